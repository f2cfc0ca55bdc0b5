"""Lightning worker: the process that runs the torch side of every job (describe, forward, batches, train, ...).

This module supplies what is torch's own: `configure`, `versions` and the handler table; the
job loop is parity.worker_runtime, started by parity.jobs (`python -m torch_models.worker`, fed
job files on stdin; `python -m torch_models.worker JOB.json` runs one by hand).
Mirror: tf_models/worker.py. The torch side reads the Keras initial weights that the Keras
worker saved, so for `forward` and `train` it runs after the Keras worker.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from parity.datasets.store import Sources


def configure(job: dict[str, Any]) -> str:
    """Threads, device, TF32 and deterministic algorithms for this job; returns the device in words.

    The worker may have served other jobs before: every setting is made both ways.
    """
    from parity import align, jobs
    from parity.worker_runtime import cpu_words

    alignment = align.Alignment.from_job(job.get("native", ()))
    deterministic = align.deterministic_ops(alignment)
    if deterministic:  # before torch touches CUDA: cuBLAS reads it when it starts (parity.jobs sets it too)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", jobs.CUBLAS_WORKSPACE_CONFIG)
    import torch

    torch.set_num_threads(job["threads"])
    if torch.get_num_interop_threads() != 1:  # settable once, before the first parallel work
        torch.set_num_interop_threads(1)
    if job["device"] == "gpu" and not torch.cuda.is_available():
        raise RuntimeError("--device gpu: torch sees no GPU")
    if torch.cuda.is_available():
        tf32 = align.tf32_allowed(alignment)  # None: torch's defaults, matmul off and cuDNN convolutions on
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        torch.backends.cudnn.allow_tf32 = True if tf32 is None else tf32
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = False
    # Lightning's info lines (GPU available, model summary) and its num_workers hint add noise, not facts.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`validation_step` but have no `val_dataloader`.*")  # no validation data
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
    # A frozen InceptionV3 trunk stays in eval mode on purpose (align: frozen_batchnorm_mode).
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    if torch.cuda.is_available():
        return f"gpu ({torch.cuda.get_device_name(0)})"
    return cpu_words(job["threads"])


def _accelerator() -> str:
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def _describe(job: dict[str, Any]) -> dict[str, Any]:
    from parity.catalog import get_spec
    from torch_models import build
    from torch_models.base import REGISTRY

    buildable = [model_id for model_id in job["models"] if get_spec(model_id).architecture in REGISTRY]
    params = {model_id: sum(p.numel() for p in build(model_id).parameters()) for model_id in buildable}
    return {"architectures": list(REGISTRY), "params": params}


def _forward(job: dict[str, Any]) -> dict[str, Any]:
    """The torch half of the forward check: each model with the Keras weights (always aligned), its outputs on the
    same inputs, in training mode too for BatchNorm/dropout models; the transfer's counts per model."""
    from parity import align, jobs
    from parity.weights import load_keras_layers
    from torch_models import build
    from torch_models.weights import load_keras_layers_into, save_forward_outputs, transfer_summary

    workdir = Path(job["workdir"])
    transfers = {}
    for model_id in job["models"]:
        tag = jobs.run_tag(model_id, job["seed"])
        layers = load_keras_layers(jobs.init_weights_path(workdir, tag))
        model = build(model_id, align.ALIGNED)
        transfers[model_id] = transfer_summary(model, layers, load_keras_layers_into(model, layers, align.ALIGNED))
        save_forward_outputs(model, np.load(jobs.probe_inputs_path(workdir, model_id)), workdir, tag, True)
    return {"transfers": transfers}


def _batches(job: dict[str, Any]) -> dict[str, Any]:
    """Dump every batch the DataLoaders yield, for the identical-batches test."""
    from parity import jobs
    from parity.plan import BatchPlan, eval_plan
    from torch_models.data import plan_loader

    data = jobs.load_data(Path(job["data"]))
    loader = plan_loader(BatchPlan(len(data.train), job["batch_size"], job["seed"]), data.train)
    train = []
    for epoch in range(job["epochs"]):
        loader.sampler.set_epoch(epoch)
        train += [(x.numpy(), y.numpy()) for x, y in loader]
    val = [] if data.val is None else [
        (x.numpy(), y.numpy()) for x, y in plan_loader(eval_plan(len(data.val), job["batch_size"]), data.val)]
    return jobs.save_batches(job["out"], train, val)


def _train_one(job: dict[str, Any], seed: int, data: Sources) -> tuple[int, dict[str, Any]]:
    """Train one seed; returns the model's parameter count and the run's record."""
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from parity import align, progress
    from parity.augment import training_augmentation
    from parity.catalog import get_spec
    from parity.plan import eval_plan, train_plan
    from torch_models.callbacks import (EpochFromOneBar, EpochLines, Recorder, StopAtNonFiniteLoss, StopAtThreshold,
                                        TensorBoardScalars, early_stopping, tensorboard_logger)
    from torch_models.data import plan_loader
    from torch_models.weights import initial_model

    spec = get_spec(job["model"])
    alignment = align.Alignment.from_job(job["native"])
    workdir = Path(job["workdir"])
    L.seed_everything(seed, workers=True, verbose=False)
    model = initial_model(spec.id, alignment, workdir, seed)
    model.learning_rate = job.get("learning_rate")
    model.train()

    plan = train_plan(spec, len(data.train), seed)
    recorder = Recorder(spec.metric)
    non_finite = StopAtNonFiniteLoss()
    callbacks: list = [recorder, non_finite]
    if job.get("tensorboard_dir"):
        logger = tensorboard_logger(Path(job["tensorboard_dir"]), progress.tensorboard_run("lightning", seed))
        callbacks.append(TensorBoardScalars(recorder, logger))
    stopper = StopAtThreshold(spec.stop) if spec.stop else None
    if stopper:
        callbacks.append(stopper)
    # Early stopping, its restore checkpoint and `--checkpoint` monitor: Lightning calls them after the others.
    best = early_stopping(job["early_stopping"], alignment, workdir / f"restore-lightning-seed{seed}") \
        if job.get("early_stopping") else None
    checkpoint = _checkpoint(job["checkpoint"], alignment, seed) if job.get("checkpoint") else None
    callbacks += [*(best.callbacks if best else ()), *([checkpoint] if checkpoint else ())]
    # A terminal: Lightning's progress bar, above which each finished epoch leaves its line, as Keras' bars do;
    # a pipe or a log file: the lines alone.
    bars = sys.stdout.isatty()
    callbacks.append(EpochLines(recorder, job["epochs"]))
    if bars:
        callbacks.append(EpochFromOneBar())
    trainer = L.Trainer(
        max_epochs=job["epochs"],
        accelerator=_accelerator(),
        devices=1,
        logger=CSVLogger(job["log_dir"], name="lightning", version=f"seed{seed}"),
        callbacks=callbacks,
        enable_checkpointing=bool(best or checkpoint),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        enable_progress_bar=bars,
        log_every_n_steps=min(50, plan.steps_per_epoch),
    )
    print(progress.run_header("lightning", spec.id, seed, job["epochs"], plan.steps_per_epoch), flush=True)
    start = time.perf_counter()
    trainer.fit(
        model,
        train_dataloaders=plan_loader(plan, data.train,
                                      augmentation=training_augmentation(spec, data.train, alignment, seed)),
        val_dataloaders=None if data.val is None else plan_loader(eval_plan(len(data.val), spec.batch_size), data.val),
    )
    wall = time.perf_counter() - start
    val_loader = None if data.val is None else plan_loader(eval_plan(len(data.val), spec.batch_size), data.val)
    stop = _early_stopping_record(best, model, trainer, recorder, spec, val_loader) if best else None
    saved = None
    if job.get("save_to"):  # after training and any restore of the best weights: the model as the run ends
        from parity import jobs
        from torch_models.saving import save_trained

        saved = save_trained(model, trainer, Path(job["save_to"]), seed,
                             np.load(jobs.probe_inputs_path(workdir, spec.id)))
    return sum(p.numel() for p in model.parameters()), {
        "seed": seed,
        "history": recorder.history,
        "step_loss": recorder.step_loss,
        "epoch_seconds": recorder.epoch_seconds,
        "wall_s": wall,
        "epochs_run": len(recorder.epoch_seconds),
        "stopped_early": bool(stopper and stopper.stopped_epoch is not None),
        "diverged": non_finite.diverged,
        "probe_predictions": _probe_predictions(model, spec),
        "optimizer_learning_rate": float(trainer.optimizers[0].param_groups[0]["lr"]),
        "forecast": _forecast(model, spec, data) if job.get("forecast") else None,
        "early_stopping": stop,
        "checkpoint": _checkpoint_record(job["checkpoint"], checkpoint) if checkpoint else None,
        "saved": saved,
    }


def _checkpoint(settings: dict[str, Any], alignment, seed: int):
    """`--checkpoint best|last`: Lightning's ModelCheckpoint (Keras' rule for `best` where aligned) writing
    lightning-seedN-KIND.ckpt to CHECKPOINT_DIR."""
    from torch_models.callbacks import best_checkpoint, last_checkpoint

    filename = f"lightning-seed{seed}-{settings['kind']}"
    if settings["kind"] == "best":
        return best_checkpoint(settings["monitor"], 0.0, alignment, Path(settings["dir"]), filename)
    return last_checkpoint(Path(settings["dir"]), filename)


def _checkpoint_record(settings: dict[str, Any], checkpoint) -> dict[str, Any]:
    path = Path(checkpoint.best_model_path)
    return {"kind": settings["kind"], "monitor": settings["monitor"], "file": path.name, "bytes": path.stat().st_size}


def _early_stopping_record(best, model, trainer, recorder, spec, val_loader) -> dict[str, Any]:
    """What EarlyStopping decided (epochs 1-based), the best checkpoint reloaded into `model`, and the restored
    model's validation loss and metric, evaluated once more on the validation batches (None without them)."""
    epoch = best.restore(model)
    restored = {}
    if val_loader is not None:
        restored = {key: float(value) for key, value in trainer.validate(model, val_loader, verbose=False)[0].items()}
    stopper = best.stopper
    return {
        "monitor": stopper.monitor, "patience": stopper.patience, "min_delta": abs(stopper.min_delta),
        "mode": stopper.mode,
        "stopped_epoch": stopper.stopped_epoch + 1 if best.stopped else None,
        "best_epoch": epoch + 1,
        "best_value": recorder.history[stopper.monitor][epoch],
        "restored": True,
        "restored_val_loss": restored.get("val_loss"),
        f"restored_val_{spec.metric}": restored.get(f"val_{spec.metric}"),
    }


def _probe_predictions(model, spec) -> list[float] | None:
    """The course's own probe (e.g. predict(10) for hello world), after training."""
    import torch

    probe = getattr(spec.data, "probe_x", ())
    if not probe:
        return None
    model.eval()
    with torch.no_grad():
        x = torch.tensor(probe, dtype=torch.float32).reshape(-1, *spec.input_shape).to(model.device)
        return model.predict_outputs(model(x)).cpu().numpy().ravel().tolist()


def _forecast(model, spec, data: Sources) -> list[float]:
    """The trained model's output for every validation window, in order: the course's forecast of each step after
    the split. Batched as validation is, so each value is the one the logged val_mae was computed from."""
    import torch

    from parity.plan import eval_plan
    from torch_models.data import plan_loader

    model.eval()
    with torch.no_grad():
        outputs = [model.predict_outputs(model(x.to(model.device)))
                   for x, _ in plan_loader(eval_plan(len(data.val), spec.batch_size), data.val)]
    return torch.cat(outputs).cpu().numpy().ravel().tolist()


def _train(job: dict[str, Any]) -> dict[str, Any]:
    """Every seed of the job in turn, each written as it finishes (parity.worker_runtime.train_seeds)."""
    from parity import jobs
    from parity.worker_runtime import train_seeds

    data = jobs.load_data(Path(job["data"]))
    return train_seeds(job, lambda seed: _train_one(job, seed, data))


HANDLERS = {
    "describe": _describe, "forward": _forward, "batches": _batches, "train": _train,
    "lockstep": "torch_models.lockstep:run_lockstep", "probe": "torch_models.probes:run_job",
    "bench": "torch_models.bench:run_bench", "roundtrip": "torch_models.saving:run_roundtrip",
    "lrsweep": "torch_models.lrsweep:run_lrsweep",
    "predict": "torch_models.inside:run_predict", "inside": "torch_models.inside:run_inside",
    "generate": "torch_models.generate:run_generate",
    "blocks": "torch_models.transfer:run_blocks",
}


def versions() -> dict[str, str]:
    import lightning
    import torch

    return {"torch": torch.__version__, "lightning": lightning.__version__}


def main(argv: list[str] | None = None) -> int:
    """Serve jobs (parity.worker_runtime.serve)."""
    from parity import worker_runtime

    return worker_runtime.serve(worker_runtime.Worker("lightning", configure, versions, HANDLERS), argv)


if __name__ == "__main__":
    sys.exit(main())
