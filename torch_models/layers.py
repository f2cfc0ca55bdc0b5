"""torch layers that behave like their Keras counterparts where no torch option does (parity.align).

KerasBatchNorm2d keeps a biased running variance (batchnorm_variance); Conv2dSame pads a
strided 'same' convolution like TensorFlow (same_padding_stride). The factories pick the
Keras-like layer or torch's own one from an `Alignment`. CausalConv1d is Keras'
Conv1D(padding='causal'), `recurrent_output` what a Keras LSTM/GRU/SimpleRNN (or Bidirectional
of one) returns, and Scale the twin of tf_models.layers.Scale. Mirror: tf_models/layers.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from parity import align


class KerasBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose running variance follows Keras: updated with the biased batch variance.

    In training both frameworks normalise with the biased batch variance; torch's own module
    then feeds the unbiased n/(n-1) estimate into running_var, Keras the biased one.
    `momentum` is in torch's convention (weight of the new batch), as align.torch_batchnorm gives it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        self._check_input_dim(x)
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)
            self.num_batches_tracked.add_(1)
        scale = torch.rsqrt(var + self.eps) * self.weight
        return x * scale[:, None, None] + (self.bias - mean * scale)[:, None, None]


def batchnorm2d(channels: int, alignment: align.Alignment, keras_momentum: float = align.KERAS_BATCHNORM_MOMENTUM,
                keras_epsilon: float = align.KERAS_BATCHNORM_EPSILON) -> nn.BatchNorm2d:
    """The torch side of Keras BatchNormalization(momentum, epsilon) on NCHW input, per `alignment`."""
    settings = align.torch_batchnorm(alignment, keras_momentum, keras_epsilon)
    cls = KerasBatchNorm2d if settings.biased_running_var else nn.BatchNorm2d
    return cls(channels, eps=settings.eps, momentum=settings.momentum)


def tensorflow_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding of one spatial axis: (before, after), the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding for any stride: explicit F.pad, then a 'valid' convolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1,
                 bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation,
                         bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        top, bottom = tensorflow_same_pads(x.shape[-2], kh, sh, dh)
        left, right = tensorflow_same_pads(x.shape[-1], kw, sw, dw)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def same_conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int,
                alignment: align.Alignment) -> nn.Conv2d:
    """The torch side of Keras Conv2D(padding='same'): Conv2dSame, or the idiomatic symmetric padding k//2."""
    if align.tensorflow_same_padding(alignment):
        return Conv2dSame(in_channels, out_channels, kernel_size, stride)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


class CausalConv1d(nn.Conv1d):
    """Conv1d with Keras' padding='causal': left-pad by dilation * (kernel_size - 1), then a 'valid' convolution.

    Output step t sees input steps <= t only. Input and output are NCW, like nn.Conv1d.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0)))


def keras_conv1d(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: str) -> nn.Conv1d:
    """The torch side of Keras Conv1D(filters, kernel_size, strides, padding) on NCW input."""
    if padding == "causal":
        return CausalConv1d(in_channels, out_channels, kernel_size, stride)
    if padding == "same" and stride != 1:
        raise ValueError("Conv1D padding='same' with strides > 1 has no torch equivalent here; use strides=1, "
                         "or 'causal' / 'valid' padding")
    return nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)


def recurrent_output(layer: nn.RNNBase, x: torch.Tensor, return_sequences: bool) -> torch.Tensor:
    """What the Keras twin of `layer` (batch_first, one layer) returns for x of shape (N, T, features).

    return_sequences: the whole output sequence (N, T, directions * H). Otherwise the final
    hidden state of each direction, concatenated forward first like Keras' Bidirectional
    merge_mode='concat': (N, directions * H). For a bidirectional layer this is h_n, not
    output[:, -1], whose backward half is the backward direction's state after one step.
    """
    output, state = layer(x)
    if return_sequences:
        return output
    final = state[0] if isinstance(layer, nn.LSTM) else state  # LSTM state is (h_n, c_n)
    directions = 2 if layer.bidirectional else 1
    return torch.cat(list(final[-directions:]), dim=-1)


class Scale(nn.Module):
    """Multiplies its input by a constant `factor`: the twin of tf_models.layers.Scale."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"
