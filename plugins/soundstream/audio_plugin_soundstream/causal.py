"""Causal convolutions that run offline or chunk by chunk with carried left context.

Every layer here maps ``(batch, channels, time)`` to ``(batch, channels', time')`` without
looking at future samples. Offline, a layer pads on the left only; streaming, it keeps the
same left context in a :class:`~audio_plugin_soundstream.streaming.StreamingState` and gives
bit-for-bit the same computation on each chunk, so a chunked run equals the offline run.

Streaming contract (:meth:`stream`): the chunk length must be a multiple of the layer's
``stride``; the encoder/decoder containers guarantee it by buffering whole hops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from audio_plugin_soundstream.streaming import StreamingState


def maybe_weight_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """``module`` with a weight-norm parametrization of ``weight`` when ``enabled``."""
    return weight_norm(module) if enabled else module


class CausalConv1d(nn.Module):
    """Causal ``Conv1d``: ``(batch, in, time)`` -> ``(batch, out, time / stride)``.

    Left padding ``(kernel_size - 1) * dilation + 1 - stride`` makes output frame ``i`` see
    inputs ``<= (i + 1) * stride - 1`` only. ``time`` must be a multiple of ``stride``
    (the containers pad the waveform to a whole number of hops once, at the input).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, dilation: int = 1, groups: int = 1, bias: bool = True,
                 norm: bool = True) -> None:
        super().__init__()
        effective = (kernel_size - 1) * dilation + 1
        if effective < stride:
            raise ValueError(f"causal conv needs (kernel_size - 1) * dilation + 1 >= stride, "
                             f"got kernel_size={kernel_size}, dilation={dilation}, "
                             f"stride={stride}")
        self.stride, self.context = stride, effective - stride
        self.conv = maybe_weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size,
                                                stride=stride, dilation=dilation,
                                                groups=groups, bias=bias), norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (self.context, 0)))

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        """One chunk ``(batch, in, n * stride)`` -> ``(batch, out, n)``."""
        if self.context == 0:
            return self.conv(x)
        past = state.get(self, lambda: x.new_zeros(*x.shape[:-1], self.context))
        full = torch.cat([past, x], dim=-1)
        state[self] = full[..., full.shape[-1] - self.context:]
        return self.conv(full)


class CausalConvTranspose1d(nn.Module):
    """Causal ``ConvTranspose1d``: ``(batch, in, frames)`` -> ``(batch, out, frames * stride)``.

    The full transposed convolution has ``(frames - 1) * stride + kernel_size`` samples; the
    last ``kernel_size - stride`` (which need future frames to complete) are dropped
    offline and carried over to the next chunk when streaming.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 norm: bool = True) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"causal transposed conv needs kernel_size >= stride, got "
                             f"{kernel_size} < {stride}")
        self.stride, self.overlap = stride, kernel_size - stride
        self.conv = maybe_weight_norm(nn.ConvTranspose1d(in_channels, out_channels,
                                                         kernel_size, stride=stride), norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)[..., : x.shape[-1] * self.stride]

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        """One chunk of frames ``(batch, in, n)`` -> ``(batch, out, n * stride)``."""
        bias = self.conv.bias
        y = F.conv_transpose1d(x, self.conv.weight, None, stride=self.stride)
        n = x.shape[-1] * self.stride
        if self.overlap:
            tail = state.get(self, lambda: y.new_zeros(*y.shape[:-1], self.overlap))
            y = torch.cat([y[..., : self.overlap] + tail, y[..., self.overlap:]], dim=-1)
            state[self] = y[..., n:]
        out = y[..., :n]
        return out if bias is None else out + bias[:, None]


class CausalLSTM(nn.Module):
    """Unidirectional LSTM over frames with a skip connection (EnCodec's SEANet bottleneck).

    ``(batch, dim, frames)`` -> ``(batch, dim, frames)``; streaming carries ``(h, c)``.
    """

    def __init__(self, dim: int, layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.lstm(x.transpose(1, 2))
        return x + y.transpose(1, 2)

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        y, hidden = self.lstm(x.transpose(1, 2), state.get(self))
        state[self] = hidden
        return x + y.transpose(1, 2)


def stream_apply(module: nn.Module, x: Tensor, state: StreamingState) -> Tensor:
    """Run ``module`` on one chunk: its own :meth:`stream` if it has one, a
    ``nn.Sequential`` layer by layer, anything else (pointwise: activations, 1x1 maps)
    as is."""
    if hasattr(module, "stream"):
        return module.stream(x, state)
    if isinstance(module, nn.Sequential):
        for layer in module:
            x = stream_apply(layer, x, state)
        return x
    return module(x)
