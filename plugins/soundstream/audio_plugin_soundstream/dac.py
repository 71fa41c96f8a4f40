"""DAC-style encoder and decoder (``soundstream.dac_encoder`` / ``soundstream.dac_decoder``):
the networks of published Descript Audio Codec weights, with Snake activations.

Encoder: ``(batch, channels, time)`` -> ``(batch, dim, ceil(time / hop_length))``; the
waveform is zero-padded on the right to a whole number of hops (as DAC's preprocessing
does). Per ratio ``r``: three residual units (dilations 1, 3, 9), Snake, a conv of kernel
``2 r``, stride ``r``, padding ``ceil(r / 2)`` doubling the width; then Snake and a
kernel-3 conv to ``dim`` (``width * 2 ** len(ratios)``, DAC's ``hidden_size``).

Decoder: ``(batch, dim, frames)`` -> ``(batch, channels, about frames * hop_length)``: a
kernel-7 conv to ``width``, per ratio (reversed) Snake, a transposed conv of kernel ``2 r``
and padding ``ceil(r / 2)`` halving the width, three residual units; Snake, a kernel-7 conv
to ``channels`` and ``tanh``. An odd ratio yields one sample less per frame than
``frames * r`` (as in DAC); the model trims or pads to the requested length.

Convolutions are centred (not causal) and carry no weight norm (published weights are
saved with it folded). ``net`` is an ``nn.Sequential`` in DAC's layer order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.contracts.components import Decoder, Encoder


class Snake(nn.Module):
    """``x + sin(alpha x)^2 / (alpha + 1e-9)`` with a learned ``alpha`` per channel:
    ``(batch, channels, time)`` -> same shape."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class SnakeResidualUnit(nn.Module):
    """``x + conv1x1(snake(conv7_dilated(snake(x))))`` at ``width`` channels, same length."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            Snake(width), nn.Conv1d(width, width, 7, dilation=dilation, padding=3 * dilation),
            Snake(width), nn.Conv1d(width, width, 1))

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        crop = (x.shape[-1] - y.shape[-1]) // 2
        return (x[..., crop: x.shape[-1] - crop] if crop > 0 else x) + y


def _units(width: int) -> list[nn.Module]:
    return [SnakeResidualUnit(width, d) for d in (1, 3, 9)]


class DacEncoder(nn.Module, Encoder):
    """DAC encoder (module docstring); ``dim`` is ``width * 2 ** len(ratios)``."""

    def __init__(self, channels: int = 1, width: int = 64,
                 ratios: Sequence[int] = (2, 4, 8, 8)) -> None:
        super().__init__()
        self.channels, self.ratios = channels, [int(r) for r in ratios]
        self.hop_length = math.prod(self.ratios)
        self.dim = width * 2 ** len(self.ratios)
        layers: list[nn.Module] = [nn.Conv1d(channels, width, 7, padding=3)]
        w = width
        for r in self.ratios:
            layers.append(nn.Sequential(*_units(w), Snake(w),
                                        nn.Conv1d(w, 2 * w, 2 * r, r, padding=math.ceil(r / 2))))
            w *= 2
        layers += [Snake(w), nn.Conv1d(w, self.dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.ndim != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"expected a waveform (batch, {self.channels}, time), got shape "
                             f"{tuple(waveform.shape)}")
        return self.net(F.pad(waveform, (0, -waveform.shape[-1] % self.hop_length)))


class DacDecoder(nn.Module, Decoder):
    """DAC decoder (module docstring): ``width`` channels after the first conv."""

    def __init__(self, channels: int = 1, dim: int = 1024, width: int = 1536,
                 ratios: Sequence[int] = (2, 4, 8, 8)) -> None:
        super().__init__()
        self.channels, self.dim, self.ratios = channels, dim, [int(r) for r in ratios]
        self.hop_length = math.prod(self.ratios)
        layers: list[nn.Module] = [nn.Conv1d(dim, width, 7, padding=3)]
        w = width
        for r in reversed(self.ratios):
            layers.append(nn.Sequential(
                Snake(w), nn.ConvTranspose1d(w, w // 2, 2 * r, r, padding=math.ceil(r / 2)),
                *_units(w // 2)))
            w //= 2
        layers += [Snake(w), nn.Conv1d(w, channels, 7, padding=3), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, latent: Tensor) -> Tensor:
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected a latent (batch, {self.dim}, frames), got shape "
                             f"{tuple(latent.shape)}")
        return self.net(latent)
