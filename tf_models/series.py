"""Time-series models on windows of the series."""

from __future__ import annotations

import keras
from keras import layers

from parity.catalog import ModelSpec
from tf_models.base import REGISTRY, model_input, output_layer
from tf_models.layers import Scale

# WindowRnn.cell -> the Keras recurrent layer and the name stem of its layers (rnn_1, bilstm_1, ...).
_CELLS: dict[str, tuple[type[layers.Layer], str]] = {
    "simple_rnn": (layers.SimpleRNN, "rnn"),
    "lstm": (layers.LSTM, "lstm"),
}


def _dense_stack(units: tuple[int, ...]) -> list[layers.Layer]:
    """dense_1, dense_2, ...: Dense(relu) layers of the given widths."""
    return [layers.Dense(width, activation="relu", name=f"dense_{index}") for index, width in enumerate(units, start=1)]


@REGISTRY.register
def window_dnn(spec: ModelSpec) -> keras.Model:
    """dense_i Dense(relu) x N -> output Dense(1): c4w2_ts_linear (N = 0), c4w2_ts_dnn, c4w4_sunspots_dnn."""
    return keras.Sequential([model_input(spec), *_dense_stack(spec.layers.hidden_units), output_layer(spec)],
                            name=spec.id)


@REGISTRY.register
def window_conv_lstm(spec: ModelSpec) -> keras.Model:
    """conv1d Conv1D(relu) -> lstm_i LSTM x N -> dense_i Dense(relu) x M -> output Dense(1) -> scale.

    c4w4_daily_min_temp, c4w4_ts_conv_lstm, c4w4_sunspots_conv_lstm_dnn. `scale` is the course's
    `Lambda(lambda x: x * 400.0)` as a serializable layer (tf_models.layers.Scale).
    """
    h = spec.layers
    recurrent = [
        layers.LSTM(units, return_sequences=sequences, name=f"lstm_{index}")
        for index, (units, sequences) in enumerate(zip(h.lstm_units, h.return_sequences), start=1)
    ]
    return keras.Sequential(
        [
            model_input(spec),
            layers.Conv1D(h.conv_filters, h.kernel_size, strides=h.conv_strides, padding=h.conv_padding,
                          activation="relu", name="conv1d"),
            *recurrent,
            *_dense_stack(h.dense_units),
            output_layer(spec),
            Scale(h.output_scale, name="scale"),
        ],
        name=spec.id,
    )


@REGISTRY.register
def window_rnn(spec: ModelSpec) -> keras.Model:
    """rnn_i SimpleRNN / lstm_i LSTM (or birnn_i / bilstm_i Bidirectional of one) x N -> output Dense(1) -> scale.

    c4w3_ts_simplernn, c4w3_ts_bilstm. Keras 3 defaults: tanh (LSTM gates sigmoid), Bidirectional
    merge_mode 'concat'. The wrapped layer is named after the stem, so Bidirectional names its
    copies forward_lstm and backward_lstm. `scale` is the course's `Lambda(lambda x: x * 100.0)`.
    """
    h = spec.layers
    cell, stem = _CELLS[h.cell]
    recurrent = []
    for index, (units, sequences) in enumerate(zip(h.units, h.return_sequences, strict=True), start=1):
        if h.bidirectional:
            recurrent.append(layers.Bidirectional(cell(units, return_sequences=sequences, name=stem),
                                                  name=f"bi{stem}_{index}"))
        else:
            recurrent.append(cell(units, return_sequences=sequences, name=f"{stem}_{index}"))
    return keras.Sequential(
        [model_input(spec), *recurrent, output_layer(spec), Scale(h.output_scale, name="scale")],
        name=spec.id,
    )
