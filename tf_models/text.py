"""Text classifiers over token ids from the shared tokenizer (parity.text)."""

from __future__ import annotations

import keras
from keras import layers

from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, output_layer


@REGISTRY.register
def embedding_gap_classifier(spec: ModelSpec) -> keras.Model:
    """Embedding -> GlobalAveragePooling1D -> Dense(hidden, relu) -> head: c3w2_sarcasm_embed_gap."""
    h = spec.layers
    return keras.Sequential(
        [
            keras.Input(shape=spec.input_shape),
            layers.Embedding(h.vocab_size, h.embedding_dim),
            layers.GlobalAveragePooling1D(),
            layers.Dense(h.hidden_units, activation="relu"),
            output_layer(spec),
        ],
        name=spec.id,
    )
