"""Image classifiers: the course's MLPs and CNNs."""

from __future__ import annotations

import math

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec
from torch_models.base import REGISTRY, CourseModule, numbered, output_units


class MlpClassifier(CourseModule):
    """flatten -> hidden Linear + ReLU -> output Linear(classes)."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        hidden = self.spec.layers.hidden_units
        self.flatten = nn.Flatten()
        self.hidden = nn.Linear(math.prod(self.spec.input_shape), hidden)
        self.output = nn.Linear(hidden, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(self.flatten(x))))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"hidden": self.hidden, "output": self.output}


class CnnClassifier(CourseModule):
    """(conv_i Conv2d + ReLU + MaxPool2d) x N -> flatten -> dropout -> hidden Linear + ReLU -> output Linear."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        height, width, channels = self.spec.input_shape
        self.convs = nn.ModuleList()
        for filters in h.conv_filters:
            self.convs.append(nn.Conv2d(channels, filters, h.kernel_size))
            channels = filters
            height = (height - h.kernel_size + 1) // h.pool_size
            width = (width - h.kernel_size + 1) // h.pool_size
        self.pool = nn.MaxPool2d(h.pool_size)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(h.flatten_dropout)  # p = 0 where the course has no Dropout: passes x through
        self.hidden = nn.Linear(channels * height * width, h.hidden_units)
        self.output = nn.Linear(h.hidden_units, output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)  # align.tensor_layout: the shared arrays are NHWC; torch convolutions want NCHW
        for conv in self.convs:
            x = self.pool(torch.relu(conv(x)))
        return self.output(torch.relu(self.hidden(self.dropout(self.flatten(x)))))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {**numbered("conv", self.convs), "hidden": self.hidden, "output": self.output}


@REGISTRY.register
def mlp_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c1w2_fmnist_dnn and the callback variants."""
    return MlpClassifier(spec.id, alignment)


@REGISTRY.register
def cnn_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c1w3_fmnist_cnn, c1w3_mnist_cnn_callback, c1w4_happy_sad, c2w4_rps_cnn (flatten_dropout)."""
    return CnnClassifier(spec.id, alignment)
