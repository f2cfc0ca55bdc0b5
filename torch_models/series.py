"""Time-series models on windows of the series."""

from __future__ import annotations

import torch
from torch import nn

from parity import align
from parity.catalog import ModelSpec
from torch_models.base import REGISTRY, CourseModule, numbered, output_units
from torch_models.layers import Scale, keras_conv1d, recurrent_output

# WindowRnn.cell -> the torch recurrent module and the Keras name stem of its layers (tf_models.series._CELLS).
_CELLS: dict[str, tuple[type[nn.RNNBase], str]] = {"simple_rnn": (nn.RNN, "rnn"), "lstm": (nn.LSTM, "lstm")}


def _dense_stack(width: int, units: tuple[int, ...]) -> nn.ModuleList:
    """The Linear layers dense_1, dense_2, ... of the given widths on inputs of `width` features."""
    widths = (width, *units)
    return nn.ModuleList(nn.Linear(n_in, n_out) for n_in, n_out in zip(widths, widths[1:]))


class WindowDnn(CourseModule):
    """(dense_i Linear + ReLU) x N -> output Linear(1) on a window of the series."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        units = self.spec.layers.hidden_units
        width = self.spec.input_shape[0]
        self.denses = _dense_stack(width, units)
        self.output = nn.Linear((width, *units)[-1], output_units(self.spec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dense in self.denses:
            x = torch.relu(dense(x))
        return self.output(x)

    def keras_layers(self) -> dict[str, nn.Module]:
        return {**numbered("dense", self.denses), "output": self.output}


class WindowConvLstm(CourseModule):
    """conv1d Conv1d + ReLU -> lstm_i LSTM x N -> (dense_i Linear + ReLU) x M -> output Linear(1) -> scale."""

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        channels = self.spec.input_shape[-1]
        self.conv1d = keras_conv1d(channels, h.conv_filters, h.kernel_size, h.conv_strides, h.conv_padding)
        self.lstms = nn.ModuleList()
        features = h.conv_filters
        for units in h.lstm_units:
            self.lstms.append(nn.LSTM(features, units, batch_first=True))
            features = units
        self.denses = _dense_stack(features, h.dense_units)
        self.output = nn.Linear((features, *h.dense_units)[-1], output_units(self.spec))
        self.scale = Scale(h.output_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # align.tensor_layout: windows are (N, steps, channels) like Keras' Conv1D input; torch's Conv1d wants NCW.
        x = torch.relu(self.conv1d(x.permute(0, 2, 1))).permute(0, 2, 1)
        for lstm, sequences in zip(self.lstms, self.spec.layers.return_sequences):
            x = recurrent_output(lstm, x, sequences)
        for dense in self.denses:
            x = torch.relu(dense(x))
        return self.scale(self.output(x))

    def keras_layers(self) -> dict[str, nn.Module]:
        return {"conv1d": self.conv1d, **numbered("lstm", self.lstms), **numbered("dense", self.denses),
                "output": self.output}


class WindowRnn(CourseModule):
    """rnn_i RNN(tanh) / lstm_i LSTM (bidirectional: birnn_i / bilstm_i) x N -> output Linear(1) -> scale.

    One torch module per Keras layer; a layer without return_sequences hands on the final hidden
    state of each direction (torch_models.layers.recurrent_output).
    """

    def __init__(self, model_id: str, alignment: align.Alignment) -> None:
        super().__init__(model_id, alignment)
        h = self.spec.layers
        cell, self.stem = _CELLS[h.cell]
        directions = 2 if h.bidirectional else 1
        cell_options = {"nonlinearity": "tanh"} if cell is nn.RNN else {}
        self.recurrent = nn.ModuleList()
        features = self.spec.input_shape[-1]
        for units in h.units:
            self.recurrent.append(cell(features, units, batch_first=True, bidirectional=h.bidirectional,
                                       **cell_options))
            features = directions * units
        self.output = nn.Linear(features, output_units(self.spec))
        self.scale = Scale(h.output_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, sequences in zip(self.recurrent, self.spec.layers.return_sequences, strict=True):
            x = recurrent_output(layer, x, sequences)
        return self.scale(self.output(x))

    def keras_layers(self) -> dict[str, nn.Module]:
        prefix = f"bi{self.stem}" if self.spec.layers.bidirectional else self.stem
        return {**numbered(prefix, self.recurrent), "output": self.output}


@REGISTRY.register
def window_dnn(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c4w2_ts_linear, c4w2_ts_dnn, c4w4_sunspots_dnn."""
    return WindowDnn(spec.id, alignment)


@REGISTRY.register
def window_conv_lstm(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c4w4_daily_min_temp, c4w4_ts_conv_lstm, c4w4_sunspots_conv_lstm_dnn."""
    return WindowConvLstm(spec.id, alignment)


@REGISTRY.register
def window_rnn(spec: ModelSpec, alignment: align.Alignment) -> CourseModule:
    """c4w3_ts_simplernn, c4w3_ts_bilstm."""
    return WindowRnn(spec.id, alignment)
