"""Causal SEANet encoder and decoder (SoundStream / EnCodec style).

Encoder: ``(batch, channels, time)`` -> ``(batch, dim, ceil(time / hop_length))``; the
waveform is zero-padded on the right to a whole number of hops, once, at the input.
Decoder: ``(batch, dim, frames)`` -> ``(batch, channels, frames * hop_length)``.
``hop_length`` is the product of ``ratios`` (the encoder's downsampling factors, in order;
the decoder upsamples by them in reverse). Every convolution is causal, so both run
offline or chunk by chunk (:meth:`stream`) with the same result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.contracts.components import Encoder
from audio_plugin_soundstream.causal import (
    CausalConv1d,
    CausalConvTranspose1d,
    CausalLSTM,
    stream_apply,
)
from audio_plugin_soundstream.energy import EnergyTransformer
from audio_plugin_soundstream.streaming import StreamingState
from audio_plugin_soundstream.wavelet import HaarFrontEnd


class ResidualUnit(nn.Module):
    """``x + conv1x1(elu(dilated_conv(elu(x))))`` at ``width`` channels, causal."""

    def __init__(self, width: int, kernel_size: int = 3, dilation: int = 1, compress: int = 2,
                 norm: bool = True) -> None:
        super().__init__()
        hidden = max(1, width // compress)
        self.block = nn.Sequential(
            nn.ELU(), CausalConv1d(width, hidden, kernel_size, dilation=dilation, norm=norm),
            nn.ELU(), CausalConv1d(hidden, width, 1, norm=norm))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        return x + stream_apply(self.block, x, state)


def residual_units(width: int, layers: int, dilation_base: int, kernel_size: int,
                   compress: int, norm: bool) -> list[nn.Module]:
    """``layers`` residual units with dilations ``1, base, base^2, ...``."""
    return [ResidualUnit(width, kernel_size, dilation_base ** j, compress, norm)
            for j in range(layers)]


def _check(ratios: Sequence[int], width: int, dim: int, channels: int) -> None:
    if not ratios or any(int(r) < 1 for r in ratios) or min(width, dim, channels) < 1:
        raise ValueError(f"ratios must be non-empty and positive, width/dim/channels >= 1; "
                         f"got ratios={list(ratios)}, width={width}, dim={dim}, "
                         f"channels={channels}")


class SEANetEncoder(nn.Module, Encoder):
    """Causal SEANet encoder: waveform ``(batch, channels, time)`` -> ``(batch, dim, frames)``.

    Per ratio ``r``: ``residual_layers`` dilated residual units, then a strided conv
    (kernel ``2 r``) doubling the width. Options: ``wavelet_levels`` > 0 puts a fixed Haar
    filterbank (:class:`HaarFrontEnd`) before the first conv; ``lstm_layers`` > 0 adds a
    causal LSTM at the frame rate; ``energy`` (a dict of :class:`EnergyTransformer`
    params, e.g. ``{steps: 2}``) adds the energy-transformer bottleneck on the latent.
    """

    def __init__(self, channels: int = 1, dim: int = 128, width: int = 32,
                 ratios: Sequence[int] = (2, 4, 5, 8), residual_layers: int = 1,
                 dilation_base: int = 3, kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, compress: int = 2, lstm_layers: int = 0,
                 norm: bool = True, wavelet_levels: int = 0,
                 energy: dict[str, Any] | None = None) -> None:
        super().__init__()
        _check(ratios, width, dim, channels)
        self.channels, self.dim, self.ratios = channels, dim, [int(r) for r in ratios]
        self.hop_length = math.prod(self.ratios)
        layers: list[nn.Module] = []
        in_channels = channels
        if wavelet_levels:
            front = HaarFrontEnd(channels, wavelet_levels)
            layers.append(front)
            in_channels = front.out_channels
        layers.append(CausalConv1d(in_channels, width, kernel_size, norm=norm))
        w = width
        for r in self.ratios:
            layers += residual_units(w, residual_layers, dilation_base, residual_kernel_size,
                                     compress, norm)
            layers += [nn.ELU(), CausalConv1d(w, 2 * w, 2 * r, stride=r, norm=norm)]
            w *= 2
        if lstm_layers:
            layers.append(CausalLSTM(w, lstm_layers))
        layers += [nn.ELU(), CausalConv1d(w, dim, last_kernel_size, norm=norm)]
        if energy:
            layers.append(EnergyTransformer(dim, **energy))
        self.net = nn.Sequential(*layers)

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.ndim != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"expected a waveform (batch, {self.channels}, time), got shape "
                             f"{tuple(waveform.shape)}")
        latent = self.net(F.pad(waveform, (0, -waveform.shape[-1] % self.hop_length)))
        return latent.contiguous()  # time-major inside (causal.py), plain layout outside

    def stream_state(self) -> StreamingState:
        """A fresh state for :meth:`stream` (audio_core's ``StreamingEncoder`` protocol)."""
        return StreamingState()

    def stream(self, chunk: Tensor, state: StreamingState) -> Tensor:
        """A chunk of any length -> the latent frames ``(batch, dim, n)`` of the hops it
        completes; the remainder waits in ``state`` for the next chunk."""
        pending = state.get(self, lambda: chunk[..., :0])
        x = torch.cat([pending, chunk], dim=-1)
        whole = x.shape[-1] - x.shape[-1] % self.hop_length
        state[self] = x[..., whole:]
        if whole == 0:
            return x.new_zeros(x.shape[0], self.dim, 0)
        return stream_apply(self.net, x[..., :whole], state).contiguous()

    def flush(self, state: StreamingState) -> Tensor:
        """End of stream: the last partial hop, zero-padded (``(batch, dim, 0 or 1)``)."""
        pending = state.get(self)
        if pending is None or pending.shape[-1] == 0:
            ref = pending if pending is not None else torch.zeros(1, self.channels, 0)
            return ref.new_zeros(ref.shape[0], self.dim, 0)
        return self.stream(pending.new_zeros(*pending.shape[:-1],
                                             self.hop_length - pending.shape[-1]), state)


class SEANetDecoder(nn.Module):
    """Causal SEANet decoder: latent ``(batch, dim, frames)`` -> ``(batch, channels,
    frames * hop_length)``.

    Mirrors :class:`SEANetEncoder`: per ratio (reversed), a transposed conv halving the width
    then residual units. ``aux_outputs=True`` keeps each upsampling stage's output
    ``(batch, width_i, frames * up_i)`` from every training forward until
    :meth:`intermediates` hands them (with :attr:`stage_factors`) to the model output,
    for the ``soundstream.aux`` loss.
    """

    def __init__(self, channels: int = 1, dim: int = 128, width: int = 32,
                 ratios: Sequence[int] = (2, 4, 5, 8), residual_layers: int = 1,
                 dilation_base: int = 3, kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, compress: int = 2, lstm_layers: int = 0,
                 norm: bool = True, tanh: bool = False, aux_outputs: bool = False) -> None:
        super().__init__()
        _check(ratios, width, dim, channels)
        self.channels, self.dim, self.ratios = channels, dim, [int(r) for r in ratios]
        self.hop_length = math.prod(self.ratios)
        self.aux_outputs = aux_outputs
        w = width * 2 ** len(self.ratios)
        head: list[nn.Module] = [CausalConv1d(dim, w, kernel_size, norm=norm)]
        if lstm_layers:
            head.append(CausalLSTM(w, lstm_layers))
        self.head = nn.Sequential(*head)
        stages, factors, up = [], [], 1
        for r in reversed(self.ratios):
            stages.append(nn.Sequential(
                nn.ELU(), CausalConvTranspose1d(w, w // 2, 2 * r, r, norm=norm),
                *residual_units(w // 2, residual_layers, dilation_base, residual_kernel_size,
                                compress, norm)))
            w //= 2
            up *= r
            factors.append(self.hop_length // up)
        self.stages = nn.ModuleList(stages)
        #: waveform samples per step of each stage's output (the target's downsampling)
        self.stage_factors = factors
        tail: list[nn.Module] = [nn.ELU(), CausalConv1d(w, channels, last_kernel_size,
                                                        norm=norm)]
        if tanh:
            tail.append(nn.Tanh())
        self.tail = nn.Sequential(*tail)
        self._stages: list[Tensor] = []

    def forward(self, latent: Tensor) -> Tensor:
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected a latent (batch, {self.dim}, frames), got shape "
                             f"{tuple(latent.shape)}")
        h = self.head(latent)
        outputs = []
        for stage in self.stages:
            h = stage(h)
            outputs.append(h)
        if self.aux_outputs and self.training:
            self._stages = outputs
        return self.tail(h).contiguous()

    def intermediates(self) -> dict[str, Any]:
        """The stage outputs of the last training forward (``"stages"``, then forgotten,
        so they do not outlive the step) and ``"stage_factors"``; empty without them."""
        stages, self._stages = self._stages, []
        return {"stages": stages, "stage_factors": self.stage_factors} if stages else {}

    def stream_state(self) -> StreamingState:
        """A fresh state for :meth:`stream` (audio_core's ``StreamingDecoder`` protocol)."""
        return StreamingState()

    def stream(self, latent: Tensor, state: StreamingState) -> Tensor:
        """Latent frames of one chunk -> their ``frames * hop_length`` samples."""
        if latent.shape[-1] == 0:
            return latent.new_zeros(latent.shape[0], self.channels, 0)
        h = stream_apply(self.head, latent, state)
        for stage in self.stages:
            h = stream_apply(stage, h, state)
        return stream_apply(self.tail, h, state).contiguous()
