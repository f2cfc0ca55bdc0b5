"""Load Keras weights exported by tf_models.weights into a torch module (mapping in parity.weights)."""

from __future__ import annotations

import torch
from torch import nn

from parity.weights import KERAS_TO_TORCH, KerasLayer, WeightMappingError, plan_transfer

_TORCH_KINDS = frozenset(KERAS_TO_TORCH.values())


def weight_modules(module: nn.Module) -> list[nn.Module]:
    """The modules that carry weights, in registration order (the order of the Keras layers)."""
    return [m for m in module.modules() if type(m).__name__ in _TORCH_KINDS]


@torch.no_grad()
def load_keras_layers_into(module: nn.Module, layers: list[KerasLayer]) -> None:
    """Copy the Keras weights into `module`, checking every shape."""
    targets = weight_modules(module)
    for target, arrays in zip(targets, plan_transfer(layers, [type(m).__name__ for m in targets])):
        for name, array in arrays.items():
            parameter = getattr(target, name)
            if tuple(parameter.shape) != array.shape:
                raise WeightMappingError(
                    f"{type(target).__name__}.{name}: torch shape {tuple(parameter.shape)} != mapped Keras shape {array.shape}"
                )
            parameter.copy_(torch.from_numpy(array))
