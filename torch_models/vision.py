"""Image classifiers: the course's MLPs and CNNs."""

from __future__ import annotations

import math

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec
from torch_models.base import REGISTRY, CourseModule, output_units


class MlpClassifier(CourseModule):
    """Flatten -> Linear(hidden) -> ReLU -> Linear(classes)."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        hidden = self.spec.layers.hidden_units
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(self.spec.input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, output_units(self.spec)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CnnClassifier(CourseModule):
    """N x (Conv2d + ReLU + MaxPool2d) -> Flatten -> Linear(hidden) -> ReLU -> Linear(classes)."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        height, width, channels = self.spec.input_shape
        features: list[nn.Module] = []
        for filters in h.conv_filters:
            features += [nn.Conv2d(channels, filters, h.kernel_size), nn.ReLU(), nn.MaxPool2d(h.pool_size)]
            channels = filters
            height = (height - h.kernel_size + 1) // h.pool_size
            width = (width - h.kernel_size + 1) // h.pool_size
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, h.hidden_units),
            nn.ReLU(),
            nn.Linear(h.hidden_units, output_units(self.spec)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # align.tensor_layout: the shared arrays are NHWC (the course's layout); torch convolutions want NCHW.
        return self.classifier(self.features(x.permute(0, 3, 1, 2)))


@REGISTRY.register
def mlp_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c1w2_fmnist_dnn and the callback variants."""
    return MlpClassifier(spec.id, alignment)


@REGISTRY.register
def cnn_classifier(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c1w3_fmnist_cnn, c1w3_mnist_cnn_callback."""
    return CnnClassifier(spec.id, alignment)
