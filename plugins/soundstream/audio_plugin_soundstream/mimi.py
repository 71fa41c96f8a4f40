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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.contracts.components import Decoder, Encoder
from audio_plugin_soundstream.encodec import EncodecDecoder, EncodecEncoder
from audio_plugin_soundstream.mimi_transformer import MimiTransformer


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
        self.channels, self.dim = channels, dim
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
        self.channels, self.dim = channels, dim
        self.hop_length = self.seanet.hop_length * stride

    def forward(self, latent: Tensor) -> Tensor:
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected a latent (batch, {self.dim}, frames), got shape "
                             f"{tuple(latent.shape)}")
        h = self.upsample(latent) if self.upsample is not None else latent
        # the SEANet's modules, as in the encoder: the same arithmetic as transformers'
        return self.seanet.net(self.transformer(h.transpose(1, 2)).transpose(1, 2))
