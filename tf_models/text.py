"""Text classifiers over token ids from the shared tokenizer (parity.text). Mirror: torch_models/text.py.

None of them masks: Embedding(mask_zero=False), so pooling and recurrent layers also run over the padding.
"""

from __future__ import annotations

import keras
from keras import layers

from parity.align import pretrained_embedding
from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, model_input, output_layer


@REGISTRY.register
def embedding_gap_classifier(spec: ModelSpec) -> keras.Model:
    """embedding -> average_pool GlobalAveragePooling1D -> hidden Dense(relu) -> output.

    c3w2_sarcasm_embed_gap, c3w2_bbc_embed_gap (5 classes, softmax), c3w2_imdb_subwords_gap.
    """
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
def embedding_flatten_classifier(spec: ModelSpec) -> keras.Model:
    """embedding -> flatten Flatten (time-major, T x D) -> hidden Dense(relu) -> output.

    c3w2_imdb_embed_flatten, c3w3_imdb_gru_lstm_conv_flatten.
    """
    h = spec.layers
    return keras.Sequential(
        [
            model_input(spec),
            layers.Embedding(h.vocab_size, h.embedding_dim, name="embedding"),
            layers.Flatten(name="flatten"),
            layers.Dense(h.hidden_units, activation="relu", name="hidden"),
            output_layer(spec),
        ],
        name=spec.id,
    )


@REGISTRY.register
def conv1d_classifier(spec: ModelSpec) -> keras.Model:
    """embedding -> conv Conv1D(relu, 'valid') -> pool GlobalMaxPooling1D / GlobalAveragePooling1D -> hidden -> output.

    c3w3_imdb_conv1d (input length None: each batch is padded to its longest review, and the pooling
    sees the windows over that padding too), c3w3_sarcasm_conv1d, c3w3_imdb_gru_lstm_conv_conv.
    """
    h = spec.layers
    pooling = layers.GlobalMaxPooling1D if h.pooling == "global_max" else layers.GlobalAveragePooling1D
    return keras.Sequential(
        [
            model_input(spec),
            layers.Embedding(h.vocab_size, h.embedding_dim, name="embedding"),
            layers.Conv1D(h.conv_filters, h.kernel_size, activation="relu", name="conv"),
            pooling(name="pool"),
            layers.Dense(h.hidden_units, activation="relu", name="hidden"),
            output_layer(spec),
        ],
        name=spec.id,
    )


def _bidirectional_stack(cell: type[layers.Layer], units: tuple[int, ...], return_sequences: tuple[bool, ...],
                         prefix: str) -> list[layers.Layer]:
    """One Bidirectional(`cell`) per entry of `units`, named prefix_1, prefix_2, ...; the wrapped cell is named too
    (lstm, gru): Bidirectional names its copies forward_<name> and backward_<name> after it."""
    return [layers.Bidirectional(cell(width, return_sequences=sequences, name=cell.__name__.lower()),
                                 name=f"{prefix}_{index}")
            for index, (width, sequences) in enumerate(zip(units, return_sequences), start=1)]


def _recurrent_classifier(spec: ModelSpec, recurrent: list[layers.Layer]) -> keras.Model:
    """embedding -> `recurrent` -> hidden Dense(relu) -> output."""
    h = spec.layers
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


@REGISTRY.register
def bilstm_classifier(spec: ModelSpec) -> keras.Model:
    """embedding -> bilstm_i Bidirectional(LSTM) x N -> hidden Dense(relu) -> output.

    c3w3_sarcasm_bilstm (one layer), c3w3_imdb_bilstm1/2 (stacked: `return_sequences` per layer),
    c3w3_imdb_gru_lstm_conv_lstm. Keras 3 LSTM defaults: tanh, sigmoid recurrent activation, unit_forget_bias.
    """
    h = spec.layers
    return _recurrent_classifier(spec, _bidirectional_stack(layers.LSTM, h.lstm_units, h.return_sequences, "bilstm"))


@REGISTRY.register
def bigru_classifier(spec: ModelSpec) -> keras.Model:
    """embedding -> bigru_i Bidirectional(GRU) x N -> hidden Dense(relu) -> output: c3w3_imdb_gru_lstm_conv.

    Keras 3 GRU defaults: reset_after=True (two bias vectors, as torch.nn.GRU has), tanh, sigmoid gates.
    """
    h = spec.layers
    return _recurrent_classifier(spec, _bidirectional_stack(layers.GRU, h.gru_units, h.return_sequences, "bigru"))


@REGISTRY.register
def glove_conv_lstm_classifier(spec: ModelSpec) -> keras.Model:
    """embedding (frozen) -> dropout -> conv Conv1D(relu) -> pool MaxPooling1D -> lstm LSTM -> output.

    c3w3_sentiment140_glove. The embedding holds the pretrained matrix of `embedding_weights` (random
    weights without one) and trains only if `embedding_trainable` (align.pretrained_embedding).
    """
    h = spec.layers
    matrix = pretrained_embedding(h)
    return keras.Sequential(
        [
            model_input(spec),
            layers.Embedding(h.vocab_size, h.embedding_dim, trainable=h.embedding_trainable,
                             weights=None if matrix is None else [matrix], name="embedding"),
            layers.Dropout(h.dropout, name="dropout"),
            layers.Conv1D(h.conv_filters, h.kernel_size, activation="relu", name="conv"),
            layers.MaxPooling1D(h.pool_size, name="pool"),
            layers.LSTM(h.lstm_units, name="lstm"),
            output_layer(spec),
        ],
        name=spec.id,
    )
