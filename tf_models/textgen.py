"""Next-word text generators (c3w4_*_textgen): Embedding -> [Bidirectional] LSTM -> Dense(V, softmax).

The vocabulary size V and the input length (max_sequence_len - 1) come from the data: a worker
builds inside parity.catalog.shaped_by_data, so the spec read here is the resolved one.
Mirror: torch_models/textgen.py.
"""

from __future__ import annotations

import keras
from keras import layers

from parity.catalog import ModelSpec, require_data_sizes
from tf_models.base import REGISTRY, model_input, output_layer


@REGISTRY.register
def text_generator(spec: ModelSpec) -> keras.Model:
    """embedding -> bilstm Bidirectional(LSTM) (or lstm) -> output Dense(V, softmax): the course's next-word model.

    Keras 3 LSTM defaults (tanh, sigmoid gates, unit_forget_bias), no mask: the pre-padding zeros are read as
    tokens, as in the course.
    """
    require_data_sizes(spec)
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
