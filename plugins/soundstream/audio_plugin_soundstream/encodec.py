"""SEANet encoder and decoder in EnCodec's layout (``soundstream.encodec_encoder`` /
``soundstream.encodec_decoder``): the networks of published EnCodec weights.

Same stages as :mod:`audio_plugin_soundstream.seanet` (per ratio: residual units, then a
strided conv of kernel ``2 r`` doubling the width; an LSTM at the frame rate), but with
EnCodec's padding (:mod:`audio_plugin_soundstream.encodec_layers`: reflect padding, causal
or centred, per-layer right padding), an optional 1x1-conv shortcut in each residual unit
and weight norm or time group norm. Causal weight-normed networks (EnCodec 24 kHz) also run
chunk by chunk (``stream_state``/``stream``/``flush``, audio_core's streaming protocols;
:mod:`audio_plugin_soundstream.encodec_streaming`): a short start-up delay, completed by
``flush``, then outputs equal to the offline ones. Centred padding or time group norm
(EnCodec 48 kHz): ``stream_state`` raises a ``StreamingError`` naming why.

Encoder: ``(batch, channels, time)`` -> ``(batch, dim, ceil(time / hop_length))``.
Decoder: ``(batch, dim, frames)`` -> ``(batch, channels, frames * hop_length)``.
``ratios`` are the encoder's downsampling factors in order (EnCodec's
``upsampling_ratios`` reversed); ``nn.Sequential`` ``net`` holds the layers in EnCodec's
order, so a weight ``encoder.layers.<i>...`` of EnCodec is ``encoder.net.<i>...`` here.
Inference (autograd off) runs ``net`` on time-major activations
(:mod:`audio_plugin_soundstream.encodec_inference`), training through its modules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from audio_core.contracts.components import Decoder, Encoder
from audio_plugin_soundstream.causal import CausalLSTM
from audio_plugin_soundstream.encodec_inference import applies, run_time_major
from audio_plugin_soundstream.encodec_layers import (
    EncodecResidualUnit,
    PaddedConv1d,
    PaddedConvTranspose1d,
)
from audio_plugin_soundstream.encodec_streaming import check_streamable, stream_net
from audio_plugin_soundstream.streaming import StreamingState


def _units(width: int, layers: int, dilation_base: int, kernel_size: int, compress: int,
           conv_shortcut: bool, conv: dict) -> list[nn.Module]:
    return [EncodecResidualUnit(width, kernel_size, dilation_base ** j, compress,
                                conv_shortcut, **conv) for j in range(layers)]


class _Streams:
    """``stream_state``/``stream``/``flush`` of an EnCodec-layout ``net`` mapping
    ``(batch, in_channels, n)`` chunks to ``(batch, out_channels, m)``."""

    net: nn.Sequential
    io_channels: tuple[int, int]  # (in, out) channels of ``net``

    def stream_state(self) -> StreamingState:
        """A fresh state for one stream; ``StreamingError`` (naming why) unless the
        network is causal with weight norm."""
        check_streamable(self.net, type(self).__name__)
        return StreamingState()

    def stream(self, chunk: Tensor, state: StreamingState) -> Tensor:
        """One chunk ``(batch, in, n)``, any ``n`` -> what it completes, ``(batch, out,
        m)``: ``m`` may be smaller than offline's at the start of the stream (reflect
        padding waits for its samples); :meth:`flush` gives the rest."""
        c_in = self.io_channels[0]
        if chunk.ndim != 3 or chunk.shape[1] != c_in:
            raise ValueError(f"expected a chunk (batch, {c_in}, n), got shape "
                             f"{tuple(chunk.shape)}")
        if self not in state:  # the first chunk: a state made elsewhere is checked too
            check_streamable(self.net, type(self).__name__)
        state[self] = chunk[..., :0]  # batch, dtype and device for flush
        return stream_net(self.net, chunk, state, final=False)

    def flush(self, state: StreamingState) -> Tensor:
        """End of stream: everything not given yet, ``(batch, out, m)`` (the last partial
        hop padded as offline, and what the start-up delay held back)."""
        ref = state.get(self)
        if ref is None:
            return torch.zeros(1, self.io_channels[1], 0)
        return stream_net(self.net, ref, state, final=True)


class EncodecEncoder(_Streams, nn.Module, Encoder):
    """EnCodec SEANet encoder: ``(batch, channels, time)`` -> ``(batch, dim, frames)``.

    ``causal``/``pad_mode``/``norm`` as :class:`~audio_plugin_soundstream.encodec_layers.
    PaddedConv1d`; ``conv_shortcut``: 1x1-conv skips in the residual units; the other
    params as :class:`~audio_plugin_soundstream.seanet.SEANetEncoder`.
    """

    def __init__(self, channels: int = 1, dim: int = 128, width: int = 32,
                 ratios: Sequence[int] = (2, 4, 5, 8), residual_layers: int = 1,
                 dilation_base: int = 2, kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, compress: int = 2, lstm_layers: int = 2,
                 causal: bool = True, pad_mode: str = "reflect", norm: str = "weight_norm",
                 conv_shortcut: bool = True) -> None:
        super().__init__()
        self.channels, self.dim, self.ratios = channels, dim, [int(r) for r in ratios]
        self.hop_length, self.io_channels = math.prod(self.ratios), (channels, dim)
        conv = {"causal": causal, "pad_mode": pad_mode, "norm": norm}
        layers: list[nn.Module] = [PaddedConv1d(channels, width, kernel_size, **conv)]
        w = width
        for r in self.ratios:
            layers += _units(w, residual_layers, dilation_base, residual_kernel_size,
                             compress, conv_shortcut, conv)
            layers += [nn.ELU(), PaddedConv1d(w, 2 * w, 2 * r, stride=r, **conv)]
            w *= 2
        if lstm_layers:
            layers.append(CausalLSTM(w, lstm_layers))
        layers += [nn.ELU(), PaddedConv1d(w, dim, last_kernel_size, **conv)]
        self.net = nn.Sequential(*layers)

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.ndim != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"expected a waveform (batch, {self.channels}, time), got shape "
                             f"{tuple(waveform.shape)}")
        if applies(self.net, waveform):
            return run_time_major(self.net, waveform)
        return self.net(waveform)


class EncodecDecoder(_Streams, nn.Module, Decoder):
    """EnCodec SEANet decoder: ``(batch, dim, frames)`` -> ``(batch, channels, frames *
    hop_length)``; params as :class:`EncodecEncoder` plus ``trim_right_ratio`` (causal
    transposed convs: the share of their ``kernel - stride`` trim taken on the right)."""

    def __init__(self, channels: int = 1, dim: int = 128, width: int = 32,
                 ratios: Sequence[int] = (2, 4, 5, 8), residual_layers: int = 1,
                 dilation_base: int = 2, kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, compress: int = 2, lstm_layers: int = 2,
                 causal: bool = True, pad_mode: str = "reflect", norm: str = "weight_norm",
                 conv_shortcut: bool = True, trim_right_ratio: float = 1.0) -> None:
        super().__init__()
        self.channels, self.dim, self.ratios = channels, dim, [int(r) for r in ratios]
        self.hop_length, self.io_channels = math.prod(self.ratios), (dim, channels)
        conv = {"causal": causal, "pad_mode": pad_mode, "norm": norm}
        w = width * 2 ** len(self.ratios)
        layers: list[nn.Module] = [PaddedConv1d(dim, w, kernel_size, **conv)]
        if lstm_layers:
            layers.append(CausalLSTM(w, lstm_layers))
        for r in reversed(self.ratios):
            layers += [nn.ELU(), PaddedConvTranspose1d(w, w // 2, 2 * r, r, causal=causal,
                                                       norm=norm,
                                                       trim_right_ratio=trim_right_ratio)]
            layers += _units(w // 2, residual_layers, dilation_base, residual_kernel_size,
                             compress, conv_shortcut, conv)
            w //= 2
        layers += [nn.ELU(), PaddedConv1d(w, channels, last_kernel_size, **conv)]
        self.net = nn.Sequential(*layers)

    def forward(self, latent: Tensor) -> Tensor:
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected a latent (batch, {self.dim}, frames), got shape "
                             f"{tuple(latent.shape)}")
        if applies(self.net, latent):
            return run_time_major(self.net, latent)
        return self.net(latent)
