"""Time-series models on windows of the series."""

from __future__ import annotations

import keras
from keras import layers

from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, output_layer


@REGISTRY.register
def window_dnn(spec: ModelSpec) -> keras.Model:
    """Input(window) -> Dense(relu) x N -> Dense(1): c4w2_ts_dnn."""
    hidden = [layers.Dense(units, activation="relu") for units in spec.layers.hidden_units]
    return keras.Sequential([keras.Input(shape=spec.input_shape), *hidden, output_layer(spec)], name=spec.id)
