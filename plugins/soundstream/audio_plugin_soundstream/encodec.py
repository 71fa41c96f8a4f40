"""SEANet encoder and decoder in EnCodec's layout (``soundstream.encodec_encoder`` /
``soundstream.encodec_decoder``): the networks of published EnCodec weights.

Same stages as :mod:`audio_plugin_soundstream.seanet` (per ratio: residual units, then a
strided conv of kernel ``2 r`` doubling the width; an LSTM at the frame rate), but with
EnCodec's padding (:mod:`audio_plugin_soundstream.encodec_layers`: reflect padding, causal
or centred, per-layer right padding), an optional 1x1-conv shortcut in each residual unit
and weight norm or time group norm. Offline only (no ``stream``).

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

from torch import Tensor, nn

from audio_core.contracts.components import Decoder, Encoder
from audio_plugin_soundstream.causal import CausalLSTM
from audio_plugin_soundstream.encodec_inference import applies, run_time_major
from audio_plugin_soundstream.encodec_layers import (
    EncodecResidualUnit,
    PaddedConv1d,
    PaddedConvTranspose1d,
)


def _units(width: int, layers: int, dilation_base: int, kernel_size: int, compress: int,
           conv_shortcut: bool, conv: dict) -> list[nn.Module]:
    return [EncodecResidualUnit(width, kernel_size, dilation_base ** j, compress,
                                conv_shortcut, **conv) for j in range(layers)]


class EncodecEncoder(nn.Module, Encoder):
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
        self.hop_length = math.prod(self.ratios)
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


class EncodecDecoder(nn.Module, Decoder):
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
        self.hop_length = math.prod(self.ratios)
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
