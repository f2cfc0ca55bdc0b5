"""Course 1 week 1: a single neuron."""

from __future__ import annotations

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec
from torch_models.base import REGISTRY, CourseModule, output_units


class SingleNeuron(CourseModule):
    """output Linear(1 -> 1)."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        self.output = nn.Linear(self.spec.input_shape[0], output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(x)

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"output": self.output}


@REGISTRY.register
def single_neuron(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c1w1_hello_linear, c1w1_house_price."""
    return SingleNeuron(spec.id, alignment)
