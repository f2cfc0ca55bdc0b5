"""Export a Keras model's weights layer by layer for parity.weights (the torch side loads them)."""

from __future__ import annotations

import keras

from parity.weights import KerasLayer


def export_layers(model: keras.Model) -> list[KerasLayer]:
    """Every layer in order with its named arrays; a Dense after a Flatten records the flattened shape."""
    exported = []
    flatten_from = None
    for layer in model.layers:
        kind = type(layer).__name__
        arrays = {variable.path.rsplit("/", 1)[-1]: variable.numpy() for variable in layer.weights}
        exported.append(
            KerasLayer(layer.name, kind, arrays, flatten_from if kind == "Dense" else None)
        )
        flatten_from = tuple(layer.input.shape[1:]) if kind == "Flatten" else None
    return exported
