"""Image classifiers: the course's MLPs and CNNs."""

from __future__ import annotations

import keras
from keras import layers

from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, model_input, output_layer


@REGISTRY.register
def mlp_classifier(spec: ModelSpec) -> keras.Model:
    """flatten -> hidden Dense(relu) -> output: c1w2_fmnist_dnn and the callback variants."""
    return keras.Sequential(
        [
            model_input(spec),
            layers.Flatten(name="flatten"),
            layers.Dense(spec.layers.hidden_units, activation="relu", name="hidden"),
            output_layer(spec),
        ],
        name=spec.id,
    )


@REGISTRY.register
def cnn_classifier(spec: ModelSpec) -> keras.Model:
    """(conv_i Conv2D(relu) + pool_i MaxPooling2D) x N -> flatten -> [dropout] -> hidden Dense(relu) -> output.

    c1w3_fmnist_cnn, c1w3_mnist_cnn_callback, c1w4_happy_sad (binary head); `flatten_dropout` > 0
    puts a Dropout between Flatten and the hidden Dense (c2w4_rps_cnn).
    """
    h = spec.layers
    stack: list = [model_input(spec)]
    for index, filters in enumerate(h.conv_filters, start=1):
        stack += [
            layers.Conv2D(filters, h.kernel_size, activation="relu", name=f"conv_{index}"),
            layers.MaxPooling2D(h.pool_size, name=f"pool_{index}"),
        ]
    stack.append(layers.Flatten(name="flatten"))
    if h.flatten_dropout:
        stack.append(layers.Dropout(h.flatten_dropout, name="dropout"))
    stack += [layers.Dense(h.hidden_units, activation="relu", name="hidden"), output_layer(spec)]
    return keras.Sequential(stack, name=spec.id)
