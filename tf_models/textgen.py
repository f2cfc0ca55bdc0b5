"""Next-word text generators (c3w4_*_textgen): Embedding -> [Bidirectional] LSTM -> Dense(V, softmax).

The vocabulary size V and the input length (max_sequence_len - 1) come from the data: a worker
builds inside parity.catalog.shaped_by_data, so the spec read here is the resolved one.
Mirror: torch_models/textgen.py.
"""

from __future__ import annotations

import keras
from keras import layers

from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, model_input, output_layer


def _require_vocabulary(spec: ModelSpec) -> None:
    if spec.layers.vocab_size is None or None in spec.input_shape:
        raise ValueError(f"{spec.id}: the vocabulary size and input length come from the data; build it within "
                         "parity.catalog.shaped_by_data(split.spec_overrides(model_id)) (a worker job's "
                         "\"spec_overrides\")")


@REGISTRY.register
def text_generator(spec: ModelSpec) -> keras.Model:
    """embedding -> bilstm Bidirectional(LSTM) (or lstm) -> output Dense(V, softmax): the course's next-word model.

    Keras 3 LSTM defaults (tanh, sigmoid gates, unit_forget_bias), no mask: the pre-padding zeros are read as
    tokens, as in the course.
    """
    _require_vocabulary(spec)
    h = spec.layers
    # The wrapped LSTM is named too: Bidirectional names its copies forward_lstm and backward_lstm after it.
    lstm = layers.LSTM(h.lstm_units, name="lstm")
    return keras.Sequential(
        [
            model_input(spec),
            layers.Embedding(h.vocab_size, h.embedding_dim, name="embedding"),
            layers.Bidirectional(lstm, name="bilstm") if h.bidirectional else lstm,
            output_layer(spec),
        ],
        name=spec.id,
    )
