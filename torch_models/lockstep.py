"""Lockstep training, torch side: the Lightning training step written out, recording loss and gradient norm.

Mirror: tf_models/lockstep.py. Runs after the Keras worker: it loads the Keras initial
weights (those the alignment copies), takes the same batches from the batch plan, and at
the end compares its parameters with the Keras final weights mapped into torch layout.
Model, batches and loss live on the worker's device (the GPU when it sees one, as Lightning's
Trainer picks it); each run records the device its tensors were on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def run_lockstep(job: dict[str, Any]) -> dict[str, Any]:
    """One lockstep run per alignment in `job["alignments"]` (lists of differences left native).

    With `job["rounding_control"]`, also the aligned run again from initial weights moved by one
    float32 ulp: how far rounding-sized differences alone carry under this model and optimizer.
    """
    import torch

    from parity import align

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runs = [_run_one(job, align.Alignment.from_job(native), device) for native in job["alignments"]]
    control = _run_one(job, align.ALIGNED, device, nudge=True) if job.get("rounding_control") else None
    return {"runs": runs, "rounding_control": control, "tensor_device": runs[0]["tensor_device"]}


def _run_one(job: dict[str, Any], alignment, device, nudge: bool = False) -> dict[str, Any]:
    """Train `job["steps"]` steps the way CourseModule.training_step does, without Lightning's loop around it."""
    import torch
    from torch import nn

    from parity import align, jobs, lockstep
    from parity.catalog import get_spec
    from parity.plan import collate, train_plan
    from parity.weights import load_keras_layers
    from torch_models.optimizers import make_optimizer
    from torch_models.weights import initial_model, load_keras_layers_into

    spec = get_spec(job["model"])
    workdir = Path(job["workdir"])
    data = jobs.load_data(Path(job["data"]))
    torch.use_deterministic_algorithms(align.deterministic_ops(alignment))
    if torch.cuda.is_available():
        tf32 = align.tf32_allowed(alignment)  # None: torch's defaults, matmul off and cuDNN convolutions on
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        torch.backends.cudnn.allow_tf32 = True if tf32 is None else tf32
    torch.manual_seed(job["seed"])
    model = initial_model(spec.id, alignment, workdir, job["seed"], tag=lockstep.TAG)
    if nudge:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.nextafter(parameter, torch.full_like(parameter, float("inf"))))
    dropouts = [module for module in model.modules() if isinstance(module, nn.Dropout)]
    for module in dropouts:
        module.p = 0.0
    model.to(device)  # before the optimizer is built: it holds the parameters it updates
    model.train()
    name, kwargs = align.torch_optimizer_config(lockstep.optimizer_from_job(job), alignment)
    optimizer = make_optimizer(name, model.parameters(), kwargs)

    losses, grad_norms = [], []
    plan = train_plan(spec, len(data.train), job["seed"])
    for rows in lockstep.batch_rows(plan, job["steps"]):
        x, y = (torch.from_numpy(array).to(device) for array in collate(data.train, rows))
        optimizer.zero_grad()
        loss = model.loss_fn(model(x), y)
        loss.backward()
        grads = [p.grad.coalesce().to_dense() if p.grad.is_sparse else p.grad for p in model.parameters()
                 if p.grad is not None]
        grad_norm = torch.sqrt(sum(torch.sum(torch.square(grad)) for grad in grads))
        optimizer.step()
        losses.append(float(loss))
        grad_norms.append(float(grad_norm))

    model.eval()
    with torch.no_grad():
        x_val, y_val = (torch.from_numpy(array).to(device) for array in collate(data.val, np.arange(len(data.val))))
        logits = model(x_val)
        scores = model.predict_outputs(logits) if spec.task == "binary" else logits
        val_metric = float(model.val_metric(scores, y_val))
    reference = initial_model(spec.id, align.ALIGNED, workdir, job["seed"], tag=lockstep.TAG)
    load_keras_layers_into(reference, load_keras_layers(lockstep.keras_final_weights_path(workdir)))
    param_diff = max(float(torch.max(torch.abs(a.detach().cpu() - b))) for a, b in
                     zip(model.parameters(), reference.parameters()))
    return {"native": alignment.to_job(), "loss": losses, "grad_norm": grad_norms, "dropout_layers": len(dropouts),
            "val_metric": val_metric, "tensor_device": str(logits.device),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "final_param_max_abs_diff": param_diff, "optimizer": name, "optimizer_kwargs": _plain(kwargs)}


def _plain(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Optimizer keyword arguments as JSON values."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in kwargs.items()}

