"""Causal convolutions that run offline or chunk by chunk with carried left context.

Every layer here maps ``(batch, channels, time)`` to ``(batch, channels', time')`` without
looking at future samples. Offline, a layer pads on the left only; streaming, it keeps the
same left context in a :class:`~audio_plugin_soundstream.streaming.StreamingState` and gives
bit-for-bit the same computation on each chunk, so a chunked run equals the offline run.

Streaming contract (:meth:`stream`): the chunk length must be a multiple of the layer's
``stride``; the encoder/decoder containers guarantee it by buffering whole hops.

Memory layout: activations keep the ``(batch, channels, time)`` shape but are stored
time-major (``(batch, time, channels)`` memory, see :func:`time_major`), and every
convolution runs as a 2-D convolution over ``(batch, channels, 1, time)`` in channels-last
format. oneDNN then convolves without reordering its input and output, offline padding
happens inside the convolution instead of in a padded copy, and the LSTM's
``(batch, time, channels)`` view is free. On 2 CPU threads the 24 kHz codec runs
1.1-1.4x faster this way than with ``nn.Conv1d`` on contiguous tensors
(``benchmarks/soundstream_codec.py``, docs/benchmarks.md).

Training (autograd on) uses the forms whose backward is fastest instead. Strided layers
whose kernel is a whole number of strides (SEANet's ``kernel = 2 * stride`` down- and
upsampling) run as one matrix product over *folded* frames: time-major
``(batch, time, channels)`` memory is already ``(batch, time / stride, stride * channels)``,
one row per output frame, so a causal strided conv is ``[frame f-1, frame f] @ W`` and a
causal transposed conv is the same product with ``stride * out`` columns, read back as
``stride`` output samples per frame; stride-1 layers pad on the left by a copy, so their
output is exactly the kept frames. Same parameters, same result; oneDNN's strided
convolution backward is 1.3-2x slower than those GEMMs on 2 threads, its forward is not
(``benchmarks/soundstream_vs_encodec.py``), so inference and streaming keep the
convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from audio_plugin_soundstream.streaming import StreamingState


def is_time_major(x: Tensor) -> bool:
    """Whether ``x`` ``(batch, channels, time)`` is stored as dense ``(batch, time, channels)``."""
    return x.stride(1) == 1 and x.transpose(1, 2).is_contiguous()


def time_major(x: Tensor) -> Tensor:
    """``x`` ``(batch, channels, time)``, stored time-major (a copy only if it is not).

    The stride of the channel axis is 1 even for a single channel, so that a 2-D view
    ``(batch, channels, 1, time)`` reads as channels-last to oneDNN.
    """
    if is_time_major(x):
        return x
    out = x.new_empty(x.shape[0], x.shape[2], x.shape[1]).transpose(1, 2)
    return out.copy_(x)


def cat_time(past: Tensor, x: Tensor) -> Tensor:
    """``past`` then ``x`` along time, stored time-major."""
    return torch.cat([time_major(past).transpose(1, 2), time_major(x).transpose(1, 2)],
                     dim=1).transpose(1, 2)


def kernel_2d(conv: nn.Conv1d | nn.ConvTranspose1d) -> Tensor:
    """``conv``'s weight ``(a, b, k)`` as a channels-last 2-D kernel ``(a, b, 1, k)``."""
    return conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)


def fold_frames(x: Tensor, stride: int) -> Tensor:
    """``(batch, channels, stride * frames)`` -> ``(batch, frames, stride * channels)``, the
    samples of each frame side by side (a view when ``x`` is time-major)."""
    x = time_major(x).transpose(1, 2)
    return x.reshape(x.shape[0], x.shape[1] // stride, stride * x.shape[2])


def frame_taps(frames: Tensor, lags: int, newest_first: bool = False) -> Tensor:
    """``frames`` ``(batch, n, d)`` -> ``(batch, n, (lags + 1) * d)``: each frame beside the
    ``lags`` frames before it (zeros before the first), oldest first (newest first with
    ``newest_first``)."""
    if lags == 0:
        return frames
    full = torch.cat([frames.new_zeros(frames.shape[0], lags, frames.shape[2]), frames], 1)
    n = frames.shape[1]
    order = range(lags, -1, -1) if newest_first else range(lags + 1)
    return torch.cat([full[:, i:i + n] for i in order], dim=2)


def folded_kernel(conv: nn.Conv1d | nn.ConvTranspose1d) -> Tensor:
    """The weight of a strided conv whose kernel is ``taps * stride`` as the matrix of
    :func:`frame_taps` rows: ``(out, taps * stride * in)`` for a convolution (output frame
    ``f`` reads input frames ``f - taps + 1 .. f``, oldest first), ``(stride * out, taps *
    in)`` for a transposed convolution (input frames ``f .. f - taps + 1``, newest first,
    write output frame ``f``)."""
    r = conv.stride[0]
    w = conv.weight
    if isinstance(conv, nn.ConvTranspose1d):  # (in, out, taps * r) -> [j, out, tap, in]
        cin, cout, k = w.shape
        return w.view(cin, cout, k // r, r).permute(3, 1, 2, 0).reshape(r * cout, (k // r) * cin)
    cout, cin, k = w.shape  # (out, in, taps * r) -> [out, tap, j, in]
    return w.view(cout, cin, k // r, r).permute(0, 2, 3, 1).reshape(cout, k * cin)


def foldable(conv: nn.Conv1d | nn.ConvTranspose1d) -> bool:
    """Whether ``conv`` runs as a product over folded frames (:func:`folded_kernel`)."""
    r, k = conv.stride[0], conv.kernel_size[0]
    return (r > 1 and k % r == 0 and conv.groups == 1 and conv.dilation[0] == 1
            and conv.padding[0] == 0)


class TimeMajorConv1d(nn.Conv1d):
    """``nn.Conv1d`` computed as a channels-last 2-D convolution (a product over folded
    frames when :func:`foldable`): ``(batch, in, time)`` -> time-major ``(batch, out,
    frames)``.

    ``forward(x, padding=None, kernel=None, fold=False)`` pads ``padding`` zeros on both
    sides (default: the layer's own ``padding``); ``kernel`` is this layer's
    :func:`kernel_2d` when the caller already made it (streaming). ``fold=True`` (a
    :func:`foldable` layer) computes the causal convolution, left-padded by ``kernel -
    stride`` zeros, as a product over folded frames instead. Everything runs inside this
    module's forward, so weight norm and ZeRO-3 gathering (hooks on the module owning the
    weight) work.
    """

    def forward(self, x: Tensor, padding: int | None = None, kernel: Tensor | None = None,
                fold: bool = False) -> Tensor:
        if fold:  # causal, left-padded by taps - 1 zero frames
            taps = frame_taps(fold_frames(x, self.stride[0]),
                              self.kernel_size[0] // self.stride[0] - 1)
            return F.linear(taps, folded_kernel(self), self.bias).transpose(1, 2)
        pad = self.padding[0] if padding is None else padding
        y = F.conv2d(time_major(x).unsqueeze(2), kernel_2d(self) if kernel is None else kernel,
                     self.bias, stride=(1, self.stride[0]), padding=(0, pad),
                     dilation=(1, self.dilation[0]), groups=self.groups)
        return y.squeeze(2)


class TimeMajorConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` (no padding) computed as a channels-last 2-D transposed
    convolution: ``(batch, in, frames)`` -> time-major ``(batch, out, (frames - 1) * stride
    + kernel_size)``; ``forward(x, bias=True, kernel=None)`` as :class:`TimeMajorConv1d`.

    ``fold=True`` (a :func:`foldable` layer) computes it as a product over frames instead
    and returns the causal part only, ``(batch, out, frames * stride)``."""

    def forward(self, x: Tensor, bias: bool = True, kernel: Tensor | None = None,
                fold: bool = False) -> Tensor:
        if fold:
            r = self.stride[0]
            taps = frame_taps(time_major(x).transpose(1, 2), self.kernel_size[0] // r - 1,
                              newest_first=True)
            kernel = folded_kernel(self)
            y = F.linear(taps, kernel,
                         self.bias.repeat(r) if bias and self.bias is not None else None)
            return y.reshape(y.shape[0], -1, kernel.shape[0] // r).transpose(1, 2)
        y = F.conv_transpose2d(time_major(x).unsqueeze(2),
                               kernel_2d(self) if kernel is None else kernel,
                               self.bias if bias else None, stride=(1, self.stride[0]))
        return y.squeeze(2)


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
        self.conv = maybe_weight_norm(TimeMajorConv1d(in_channels, out_channels, kernel_size,
                                                      stride=stride, dilation=dilation,
                                                      groups=groups, bias=bias), norm)
        self.folded = foldable(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        if not torch.is_grad_enabled():  # inference: oneDNN's forward, padding inside
            return self.conv(x, self.context)[..., :x.shape[-1] // self.stride]
        # training: the forms whose backward is fastest (1.1-2x, module docstring)
        if self.folded:
            return self.conv(x, fold=True)
        if self.context == 0:
            return self.conv(x)
        # left-padded by `context`, the unpadded conv yields exactly time / stride frames
        past = x.new_zeros(x.shape[0], x.shape[1], self.context)
        return self.conv(cat_time(past, x))

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        """One chunk ``(batch, in, n * stride)`` -> ``(batch, out, n)``."""
        kernel = state.constant(self, lambda: kernel_2d(self.conv))
        if self.context == 0:
            return self.conv(x, kernel=kernel)
        past = state.get(self, lambda: x.new_zeros(*x.shape[:-1], self.context))
        full = cat_time(past, x)
        state[self] = full[..., full.shape[-1] - self.context:]
        return self.conv(full, kernel=kernel)


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
        self.conv = maybe_weight_norm(TimeMajorConvTranspose1d(in_channels, out_channels,
                                                               kernel_size, stride=stride),
                                      norm)
        self.folded = foldable(self.conv)

    def forward(self, x: Tensor) -> Tensor:
        if self.folded and torch.is_grad_enabled():  # training: the faster backward
            return self.conv(x, fold=True)
        return self.conv(x)[..., : x.shape[-1] * self.stride]

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        """One chunk of frames ``(batch, in, n)`` -> ``(batch, out, n * stride)``."""
        bias = self.conv.bias
        kernel = state.constant(self, lambda: kernel_2d(self.conv))
        y = self.conv(x, bias=False, kernel=kernel)
        n = x.shape[-1] * self.stride
        if self.overlap:
            tail = state.get(self, lambda: y.new_zeros(*y.shape[:-1], self.overlap))
            y = cat_time(y[..., : self.overlap] + tail, y[..., self.overlap:])
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
