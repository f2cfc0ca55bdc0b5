"""Keras layers the course wrote as Lambda, as ordinary serializable layers.

A `.keras` file with a Lambda cannot be loaded with `safe_mode=True` (the lambda is code);
these layers keep their constants in `get_config`, so a saved model loads safely wherever
this module is imported (importing `tf_models` does it). Mirror: torch_models/layers.py.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="parity")
class Scale(keras.layers.Layer):
    """Multiplies its input by a constant `factor`: the course's `Lambda(lambda x: x * 400.0)`."""

    def __init__(self, factor: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = float(factor)

    def call(self, inputs):
        return inputs * self.factor

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}
