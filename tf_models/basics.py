"""Course 1 week 1: a single neuron."""

from __future__ import annotations

import keras

from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, model_input, output_layer


@REGISTRY.register
def single_neuron(spec: ModelSpec) -> keras.Model:
    """input -> output Dense(1): c1w1_hello_linear, c1w1_house_price."""
    return keras.Sequential([model_input(spec), output_layer(spec)], name=spec.id)
