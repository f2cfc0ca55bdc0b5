"""Load Keras weights exported by tf_models.weights into a torch module (mapping in parity.weights)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from parity import align
from parity.weights import KERAS_TO_TORCH, KerasLayer, WeightMappingError, plan_transfer

_TORCH_KINDS = frozenset(KERAS_TO_TORCH.values())


def torch_kind(module: nn.Module) -> str | None:
    """The mapped torch class `module` is or derives from (KerasBatchNorm2d -> BatchNorm2d); None if unmapped."""
    return next((cls.__name__ for cls in type(module).__mro__ if cls.__name__ in _TORCH_KINDS), None)


def weight_modules(module: nn.Module) -> list[nn.Module]:
    """The modules that carry weights, in registration order (the order of the Keras layers)."""
    return [m for m in module.modules() if torch_kind(m) is not None]


@torch.no_grad()
def load_keras_layers_into(module: nn.Module, layers: list[KerasLayer],
                           alignment: align.Alignment = align.ALIGNED) -> None:
    """Copy the Keras weights into `module`, checking every shape; layers left native keep torch's init."""
    targets = weight_modules(module)
    for target, arrays in zip(targets, plan_transfer(layers, [torch_kind(m) for m in targets], alignment)):
        for name, array in (arrays or {}).items():
            parameter = getattr(target, name)
            if tuple(parameter.shape) != array.shape:
                raise WeightMappingError(
                    f"{type(target).__name__}.{name}: torch shape {tuple(parameter.shape)} != mapped Keras shape {array.shape}"
                )
            parameter.copy_(torch.from_numpy(array))


def initial_model(model_id: str, alignment: align.Alignment, workdir: Path, seed: int,
                  tag: str | None = None) -> nn.Module:
    """The torch model of `model_id` holding the Keras initial weights of `seed` (or of `tag`) that `alignment` copies."""
    from parity import jobs
    from parity.weights import load_keras_layers
    from torch_models import build

    model = build(model_id, alignment)
    tag = tag or jobs.run_tag(model_id, seed)
    load_keras_layers_into(model, load_keras_layers(jobs.init_weights_path(workdir, tag)), alignment)
    return model
