"""Image classifiers: the course's MLPs and CNNs."""

from __future__ import annotations

import keras
from keras import layers

from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, output_layer


@REGISTRY.register
def mlp_classifier(spec: ModelSpec) -> keras.Model:
    """Flatten -> Dense(hidden, relu) -> head: c1w2_fmnist_dnn and the callback variants."""
    return keras.Sequential(
        [
            keras.Input(shape=spec.input_shape),
            layers.Flatten(),
            layers.Dense(spec.layers.hidden_units, activation="relu"),
            output_layer(spec),
        ],
        name=spec.id,
    )


@REGISTRY.register
def cnn_classifier(spec: ModelSpec) -> keras.Model:
    """N x (Conv2D + MaxPooling2D) -> Flatten -> Dense(hidden, relu) -> head: c1w3_fmnist_cnn, c1w3_mnist_cnn_callback."""
    h = spec.layers
    stack: list = [keras.Input(shape=spec.input_shape)]
    for filters in h.conv_filters:
        stack += [
            layers.Conv2D(filters, h.kernel_size, activation="relu"),
            layers.MaxPooling2D(h.pool_size),
        ]
    stack += [layers.Flatten(), layers.Dense(h.hidden_units, activation="relu"), output_layer(spec)]
    return keras.Sequential(stack, name=spec.id)
