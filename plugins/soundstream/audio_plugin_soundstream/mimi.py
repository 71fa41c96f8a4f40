"""Mimi's encoder and decoder (``soundstream.mimi_encoder`` / ``soundstream.mimi_decoder``):
the networks of published Mimi weights (Kyutai's 12.5 Hz speech codec).

Encoder: ``(batch, channels, time)`` -> ``(batch, dim, ceil(time / hop_length))``:

1. a SEANet encoder in EnCodec's layout (:class:`~audio_plugin_soundstream.encodec.
   EncodecEncoder` with plain convs and no LSTM) down to ``prod(ratios)`` samples per frame;
2. :class:`~audio_plugin_soundstream.mimi_transformer.MimiTransformer` over those frames;
3. a strided conv (kernel ``2 * stride``, no bias, edge-replicating padding, causal or
   centred) down to the model's frame rate (``stride`` 1: none).

``hop_length = prod(ratios) * stride`` (1920 for 24 kHz at 12.5 Hz).

Decoder: ``(batch, dim, frames)`` -> ``(batch, channels, frames * hop_length)``: a grouped
transposed conv (kernel ``2 * stride``, ``groups`` groups, no bias; 512 = depthwise in the
published model) back to the SEANet frame rate, a second transformer, the SEANet decoder.

Causal networks also run chunk by chunk (``stream_state``/``stream``/``flush``, audio_core's
streaming protocols): the SEANet layers carry their context as EnCodec's do
(:mod:`audio_plugin_soundstream.encodec_streaming`; Mimi's zero padding needs no start-up
delay), the transformers keep a key/value cache of their window
(:meth:`~audio_plugin_soundstream.mimi_transformer.MimiTransformer.stream`), the strided
conv keeps its input from its next window on (the first frame replicated ``stride`` times
before it), the transposed conv the last frames its kernel reaches past. The concatenated
outputs equal the offline ones to float rounding; the encoder's ``flush`` codes the last
partial hop padded as offline. Centred (non-causal) convolutions look ahead:
``stream_state`` raises a ``StreamingError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.contracts.components import Decoder, Encoder
from audio_core.models.streaming import StreamingError
from audio_plugin_soundstream.encodec import EncodecDecoder, EncodecEncoder
from audio_plugin_soundstream.encodec_streaming import check_streamable, stream_net
from audio_plugin_soundstream.mimi_transformer import MimiTransformer
from audio_plugin_soundstream.streaming import StreamingState


class Downsample(nn.Module):
    """Conv1d ``(batch, dim, frames)`` -> ``(batch, dim, ceil(frames / stride))``, kernel
    ``2 * stride``, no bias. Padding replicates the edge frames: ``stride`` frames on the
    left when ``causal`` (else ``stride // 2`` on the right, the rest on the left), plus
    as many on the right as make the last window whole."""

    def __init__(self, dim: int, stride: int, causal: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.right = 0 if causal else stride // 2
        self.conv = nn.Conv1d(dim, dim, 2 * stride, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        extra = -x.shape[-1] % self.stride
        x = F.pad(x, (self.stride - self.right, self.right + extra), mode="replicate")
        return self.conv(x)

    def stream(self, x: Tensor, state: StreamingState, final: bool) -> Tensor:
        """Causal only. Frames ``(batch, dim, n)`` of a stream -> the output frames they
        complete ``(batch, dim, m)`` (all that remain when ``final``, the last window
        padded by replicating the last frame as offline). State: ``(input, left-padded
        with the first frame, from the next window on; started)``."""
        s = self.stride
        held, started = state.get(self, lambda: (x[..., :0], False))
        buf = torch.cat([held, x], dim=-1)
        if not started and buf.shape[-1]:
            buf, started = torch.cat([buf[..., :1].expand(-1, -1, s), buf], dim=-1), True
        if final and started and (right := -(buf.shape[-1] - s) % s):
            buf = torch.cat([buf, buf[..., -1:].expand(-1, -1, right)], dim=-1)
        frames = max(0, (buf.shape[-1] - s) // s)
        state[self] = (buf[..., frames * s:], started)
        return self.conv(buf[..., : frames * s + s]) if frames else buf[..., :0]


class Upsample(nn.Module):
    """ConvTranspose1d ``(batch, dim, frames)`` -> ``(batch, dim, frames * stride)``,
    kernel ``2 * stride``, ``groups`` groups, no bias; of the ``stride`` surplus samples
    ``ceil(stride * trim_right_ratio)`` are cut on the right when ``causal`` (else
    ``stride // 2``), the rest on the left."""

    def __init__(self, dim: int, stride: int, groups: int, causal: bool = True,
                 trim_right_ratio: float = 1.0) -> None:
        super().__init__()
        if dim % groups:
            raise ValueError(f"upsample groups ({groups}) must divide dim ({dim})")
        self.right = math.ceil(stride * trim_right_ratio) if causal else stride // 2
        self.left = stride - self.right
        self.conv = nn.ConvTranspose1d(dim, dim, 2 * stride, stride, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return y[..., self.left: y.shape[-1] - self.right]

    def stream(self, x: Tensor, state: StreamingState, final: bool) -> Tensor:
        """Frames ``(batch, dim, n)`` -> ``(batch, dim, n * stride)`` (fewer by ``left``
        at the start, given back when ``final``). State: ``(the last input frames whose
        kernel reaches past them, samples still to drop)``: the conv runs again on them
        with the new frames, so each output sample is summed as offline (bit for bit;
        adding a carried output tail instead rounds differently)."""
        s = self.conv.stride[0]
        context = (self.conv.kernel_size[0] - 1) // s
        prev, skip = state.get(self, lambda: (x[..., :0], self.left))
        done = x[..., :0]
        if x.shape[-1]:
            buf = torch.cat([prev, x], dim=-1)
            done = self.conv(buf)[..., prev.shape[-1] * s: buf.shape[-1] * s]
            prev = buf[..., max(0, buf.shape[-1] - context):]
        if final and prev.shape[-1]:  # the last frames' tail, less the right trim
            y = self.conv(prev)
            done = torch.cat([done, y[..., prev.shape[-1] * s: y.shape[-1] - self.right]],
                             dim=-1)
        drop = min(skip, done.shape[-1])
        state[self] = (prev, skip - drop)
        return done[..., drop:]


def _check_chunk(x: Tensor, channels: int, what: str) -> None:
    if x.ndim != 3 or x.shape[1] != channels:
        raise ValueError(f"expected a {what} chunk (batch, {channels}, n), got shape "
                         f"{tuple(x.shape)}")


def _check_causal(seanet: nn.Module, causal: bool, owner: str) -> None:
    """:class:`StreamingError` unless ``seanet`` and the strided convs are causal."""
    if not causal:
        raise StreamingError(f"{owner} does not stream: its convolutions are centred "
                             f"(causal = false, Mimi's use_causal_conv) and look ahead; "
                             f"code the whole signal (encode_codes / decode_codes) instead")
    check_streamable(seanet, owner)


class MimiEncoder(nn.Module, Encoder):
    """Mimi encoder (module docstring). SEANet params as :class:`~audio_plugin_soundstream.
    encodec.EncodecEncoder` (Mimi's defaults: ``pad_mode="constant"``, no conv shortcut,
    last kernel 3); ``stride``: the downsampling after the transformer; ``transformer``:
    :class:`~audio_plugin_soundstream.mimi_transformer.MimiTransformer` params."""

    def __init__(self, channels: int = 1, dim: int = 512, width: int = 64,
                 ratios: Sequence[int] = (4, 5, 6, 8), residual_layers: int = 1,
                 dilation_base: int = 2, kernel_size: int = 7, last_kernel_size: int = 3,
                 residual_kernel_size: int = 3, compress: int = 2, causal: bool = True,
                 pad_mode: str = "constant", conv_shortcut: bool = False, stride: int = 2,
                 transformer: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.seanet = EncodecEncoder(
            channels=channels, dim=dim, width=width, ratios=ratios,
            residual_layers=residual_layers, dilation_base=dilation_base,
            kernel_size=kernel_size, last_kernel_size=last_kernel_size,
            residual_kernel_size=residual_kernel_size, compress=compress, lstm_layers=0,
            causal=causal, pad_mode=pad_mode, norm="none", conv_shortcut=conv_shortcut)
        self.transformer = MimiTransformer(dim, **dict(transformer or {}))
        self.downsample = Downsample(dim, stride, causal) if stride > 1 else None
        self.channels, self.dim, self.causal = channels, dim, bool(causal)
        self.hop_length = self.seanet.hop_length * stride

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.ndim != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"expected a waveform (batch, {self.channels}, time), got shape "
                             f"{tuple(waveform.shape)}")
        # the SEANet's modules themselves, not its time-major inference path: that one
        # rounds differently, and deep residual codes are sensitive to the last bits
        h = self.seanet.net(waveform)
        h = self.transformer(h.transpose(1, 2)).transpose(1, 2)
        return self.downsample(h) if self.downsample is not None else h

    def stream_state(self) -> StreamingState:
        """A fresh state for one stream; ``StreamingError`` unless causal."""
        _check_causal(self.seanet.net, self.causal, type(self).__name__)
        return StreamingState()

    def _stream(self, x: Tensor, state: StreamingState, final: bool) -> Tensor:
        h = stream_net(self.seanet.net, x, state, final)
        h = self.transformer.stream(h.transpose(1, 2), state).transpose(1, 2)
        return self.downsample.stream(h, state, final) if self.downsample is not None else h

    def stream(self, chunk: Tensor, state: StreamingState) -> Tensor:
        """Waveform chunk ``(batch, channels, n)``, any ``n`` -> latent ``(batch, dim, m)``
        of the hops completed so far."""
        _check_chunk(chunk, self.channels, "waveform")
        if self not in state:  # the first chunk: a state made elsewhere is checked too
            _check_causal(self.seanet.net, self.causal, type(self).__name__)
        state[self] = chunk[..., :0]  # batch, dtype and device for flush
        return self._stream(chunk, state, final=False)

    def flush(self, state: StreamingState) -> Tensor:
        """End of stream: the last partial hop, padded as offline, ``(batch, dim, 0 or
        1)``."""
        ref = state.get(self)
        if ref is None:
            return torch.zeros(1, self.dim, 0)
        return self._stream(ref, state, final=True)


class MimiDecoder(nn.Module, Decoder):
    """Mimi decoder (module docstring): params as :class:`MimiEncoder` plus ``groups`` (of
    the upsampling transposed conv) and ``trim_right_ratio`` (causal transposed convs: the
    share of their surplus cut on the right)."""

    def __init__(self, channels: int = 1, dim: int = 512, width: int = 64,
                 ratios: Sequence[int] = (4, 5, 6, 8), residual_layers: int = 1,
                 dilation_base: int = 2, kernel_size: int = 7, last_kernel_size: int = 3,
                 residual_kernel_size: int = 3, compress: int = 2, causal: bool = True,
                 pad_mode: str = "constant", conv_shortcut: bool = False, stride: int = 2,
                 groups: int = 512, trim_right_ratio: float = 1.0,
                 transformer: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.upsample = Upsample(dim, stride, groups, causal, trim_right_ratio) \
            if stride > 1 else None
        self.transformer = MimiTransformer(dim, **dict(transformer or {}))
        self.seanet = EncodecDecoder(
            channels=channels, dim=dim, width=width, ratios=ratios,
            residual_layers=residual_layers, dilation_base=dilation_base,
            kernel_size=kernel_size, last_kernel_size=last_kernel_size,
            residual_kernel_size=residual_kernel_size, compress=compress, lstm_layers=0,
            causal=causal, pad_mode=pad_mode, norm="none", conv_shortcut=conv_shortcut,
            trim_right_ratio=trim_right_ratio)
        self.channels, self.dim, self.causal = channels, dim, bool(causal)
        self.hop_length = self.seanet.hop_length * stride

    def forward(self, latent: Tensor) -> Tensor:
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected a latent (batch, {self.dim}, frames), got shape "
                             f"{tuple(latent.shape)}")
        h = self.upsample(latent) if self.upsample is not None else latent
        # the SEANet's modules, as in the encoder: the same arithmetic as transformers'
        return self.seanet.net(self.transformer(h.transpose(1, 2)).transpose(1, 2))

    def stream_state(self) -> StreamingState:
        """A fresh state for one stream; ``StreamingError`` unless causal."""
        _check_causal(self.seanet.net, self.causal, type(self).__name__)
        return StreamingState()

    def _stream(self, latent: Tensor, state: StreamingState, final: bool) -> Tensor:
        h = self.upsample.stream(latent, state, final) if self.upsample is not None \
            else latent
        h = self.transformer.stream(h.transpose(1, 2), state).transpose(1, 2)
        return stream_net(self.seanet.net, h, state, final)

    def stream(self, latent: Tensor, state: StreamingState) -> Tensor:
        """Latent ``(batch, dim, n)`` -> waveform ``(batch, channels, n * hop_length)``
        (fewer at the start with a ``trim_right_ratio`` below 1: :meth:`flush`)."""
        _check_chunk(latent, self.dim, "latent")
        if self not in state:
            _check_causal(self.seanet.net, self.causal, type(self).__name__)
        state[self] = latent[..., :0]
        return self._stream(latent, state, final=False)

    def flush(self, state: StreamingState) -> Tensor:
        """End of stream: the samples held back ``(batch, channels, m)`` (none with the
        published ``trim_right_ratio`` of 1)."""
        ref = state.get(self)
        if ref is None:
            return torch.zeros(1, self.channels, 0)
        return self._stream(ref, state, final=True)
