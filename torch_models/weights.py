"""Load Keras weights exported by tf_models.weights into a torch model by Keras layer name; the torch forward check.

The interface a torch model implements: `keras_layers() -> dict[str, nn.Module]`, mapping each
Keras layer name path (`hidden`, `bilstm_1`, `trunk/conv_1`) to the module that receives its
weights. parity.weights converts each layer and refuses a transfer that leaves any Keras
variable, or any parameter or buffer of the model, unassigned (its docstring states the rule).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from parity import align
from parity.weights import TORCH_KINDS, KerasLayer, TorchTarget, TransferPlan, WeightMappingError, plan_transfer

# Module options that converters check (parity.weights._check_recurrent).
_SETTINGS = ("num_layers", "bidirectional", "nonlinearity")


def torch_kind(module: nn.Module) -> str | None:
    """The torch class with a converter that `module` is or derives from (KerasBatchNorm2d -> BatchNorm2d)."""
    return next((cls.__name__ for cls in type(module).__mro__ if cls.__name__ in TORCH_KINDS), None)


def keras_layer_map(model: nn.Module, layers: list[KerasLayer]) -> dict[str, nn.Module]:
    """The model's `keras_layers()`; a bare torch layer (a probe) stands for the one Keras layer exported."""
    if hasattr(model, "keras_layers"):
        return model.keras_layers()
    if len(layers) == 1 and torch_kind(model) is not None:
        return {layers[0].name: model}
    raise WeightMappingError(f"{type(model).__name__} has no keras_layers(); define it to map each Keras layer name "
                             f"({', '.join(layer.name for layer in layers)}) to the torch module that receives it")


def _tensors(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in [*module.named_parameters(), *module.named_buffers()]}


def _target(module: nn.Module, paths: dict[int, str], keras_name: str) -> TorchTarget:
    if id(module) not in paths:
        raise WeightMappingError(f"keras_layers() maps {keras_name} to a {type(module).__name__} that is not a "
                                 "submodule of the model")
    return TorchTarget(
        path=paths[id(module)],
        kind=torch_kind(module) or type(module).__name__,
        tensors=_tensors(module),
        settings={key: getattr(module, key) for key in _SETTINGS if hasattr(module, key)},
    )


def transfer_plan(model: nn.Module, layers: list[KerasLayer],
                  alignment: align.Alignment = align.ALIGNED) -> TransferPlan:
    """What every parameter and buffer of `model` receives from the Keras `layers` (parity.weights.plan_transfer)."""
    paths = {id(module): name for name, module in model.named_modules()}
    targets = {name: _target(module, paths, name) for name, module in keras_layer_map(model, layers).items()}
    return plan_transfer(layers, targets, _tensors(model), alignment)


@torch.no_grad()
def apply_plan(model: nn.Module, plan: TransferPlan) -> None:
    """Copy the planned arrays into `model` and set requires_grad of every parameter as the plan says."""
    parameters = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    for name, assignment in plan.assignments.items():
        tensor = parameters[name] if name in parameters else buffers[name]
        if assignment.array is not None:
            tensor.copy_(torch.from_numpy(np.asarray(assignment.array)))
        if name in parameters:
            tensor.requires_grad_(assignment.trainable)


def load_keras_layers_into(model: nn.Module, layers: list[KerasLayer],
                           alignment: align.Alignment = align.ALIGNED) -> TransferPlan:
    """Copy the Keras weights into `model` (complete, by name, shapes checked); returns the plan it applied."""
    plan = transfer_plan(model, layers, alignment)
    apply_plan(model, plan)
    return plan


def transfer_summary(model: nn.Module, layers: list[KerasLayer], plan: TransferPlan) -> dict[str, int]:
    """Counts that show a transfer complete: every Keras variable read, every torch tensor assigned.

    `keras_variables_read` counts the Keras variables some assignment names as its source (a GRU
    bias feeds two torch tensors, as `bias[0]` and `bias[1]`); the rest of the assignments are the
    stated constants (a zero second recurrent bias, `num_batches_tracked`).
    """
    variables = {f"{layer.name}/{key}" for layer in layers for key in layer.arrays}
    sources = {assignment.source.split("[")[0] for assignment in plan.assignments.values()}
    return {
        "keras_layers": len(layers),
        "keras_variables": len(variables),
        "keras_variables_read": len(variables & sources),
        "torch_tensors": len(_tensors(model)),
        "torch_tensors_assigned": len(plan.assignments),
        "constants": sum(assignment.source not in variables and assignment.source.split("[")[0] not in variables
                         for assignment in plan.assignments.values()),
    }


def initial_model(model_id: str, alignment: align.Alignment, workdir: Path, seed: int,
                  tag: str | None = None) -> nn.Module:
    """The torch model of `model_id` with the Keras initial weights of `seed` (or `tag`) that `alignment` copies."""
    from parity import jobs
    from parity.weights import load_keras_layers
    from torch_models import build

    model = build(model_id, alignment)
    tag = tag or jobs.run_tag(model_id, seed)
    load_keras_layers_into(model, load_keras_layers(jobs.init_weights_path(workdir, tag)), alignment)
    return model


def has_training_behaviour(model: nn.Module) -> bool:
    """Whether training mode differs from inference: a BatchNorm module, or a dropout module with p > 0."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm)
               or (isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0) for m in model.modules())


def _outputs(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """What the Keras model outputs: a CourseModule maps its logits with predict_outputs."""
    outputs = model(x)
    predict = getattr(model, "predict_outputs", None)
    return (predict(outputs) if predict else outputs).numpy()


@torch.no_grad()
def save_forward_outputs(model: nn.Module, inputs: np.ndarray, workdir: Path, tag: str, training_mode: bool) -> None:
    """The torch half of the forward check of run `tag` (mirror of tf_models.weights.save_forward_check).

    Saves the inference outputs; with `training_mode`, for a model with BatchNorm or dropout,
    also the outputs in training mode with every dropout p set to 0 and the BatchNorm running
    statistics after that call, keyed by the Keras layer names of `keras_layers()`.
    The model is left in training mode with its dropout off: use a fresh one to train.
    """
    from parity import compare, jobs

    x = torch.from_numpy(inputs)
    model.eval()
    np.save(jobs.outputs_path(workdir, "lightning", tag), _outputs(model, x))
    if not (training_mode and has_training_behaviour(model)):
        return
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
    model.train()
    outputs = _outputs(model, x)
    statistics = {}
    for name, module in model.keras_layers().items():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            statistics[f"{name}/moving_mean"] = module.running_mean.numpy()
            statistics[f"{name}/moving_variance"] = module.running_var.numpy()
    compare.save_training_outputs(compare.training_outputs_path(workdir, "lightning", tag), outputs, statistics)
