"""Text classifiers over token ids from the shared tokenizer (parity.text)."""

from __future__ import annotations

import keras
from keras import layers

from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, model_input, output_layer


@REGISTRY.register
def embedding_gap_classifier(spec: ModelSpec) -> keras.Model:
    """embedding -> average_pool GlobalAveragePooling1D -> hidden Dense(relu) -> output: c3w2_sarcasm_embed_gap."""
    h = spec.layers
    return keras.Sequential(
        [
            model_input(spec),
            layers.Embedding(h.vocab_size, h.embedding_dim, name="embedding"),
            layers.GlobalAveragePooling1D(name="average_pool"),
            layers.Dense(h.hidden_units, activation="relu", name="hidden"),
            output_layer(spec),
        ],
        name=spec.id,
    )


@REGISTRY.register
def bilstm_classifier(spec: ModelSpec) -> keras.Model:
    """embedding -> bilstm_i Bidirectional(LSTM) x N -> hidden Dense(relu) -> output.

    c3w3_sarcasm_bilstm (one layer), c3w3_imdb_bilstm1/2 (stacked: `return_sequences` per layer).
    Keras 3 LSTM defaults: tanh, sigmoid recurrent activation, unit_forget_bias; no mask (mask_zero=False).
    """
    h = spec.layers
    # The wrapped LSTM is named too: Bidirectional names its copies forward_lstm and backward_lstm after it.
    recurrent = [
        layers.Bidirectional(layers.LSTM(units, return_sequences=sequences, name="lstm"), name=f"bilstm_{index}")
        for index, (units, sequences) in enumerate(zip(h.lstm_units, h.return_sequences), start=1)
    ]
    return keras.Sequential(
        [
            model_input(spec),
            layers.Embedding(h.vocab_size, h.embedding_dim, name="embedding"),
            *recurrent,
            layers.Dense(h.hidden_units, activation="relu", name="hidden"),
            output_layer(spec),
        ],
        name=spec.id,
    )
