"""Time-series models on windows of the series."""

from __future__ import annotations

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec
from torch_models.base import REGISTRY, CourseModule, output_units


class WindowDnn(CourseModule):
    """(Linear + ReLU) x N -> Linear(1) on a window of the series."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        layers: list[nn.Module] = []
        width = self.spec.input_shape[0]
        for units in self.spec.layers.hidden_units:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers.append(nn.Linear(width, output_units(self.spec)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@REGISTRY.register
def window_dnn(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c4w2_ts_dnn."""
    return WindowDnn(spec.id, alignment)
