"""A plain strided-convolution encoder/decoder pair: small, fast, any input length."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.contracts.components import Decoder, Encoder

# Moved to denoisers.py; kept importable here for the old decoder-kind registration.

__all__ = ["ConvDecoder", "ConvEncoder"]


def _check(ratios: Sequence[int], channels: int, dim: int) -> None:
    if not ratios or any(r < 1 for r in ratios) or channels < 1 or dim < 1:
        raise ValueError(f"ratios must be positive and non-empty, channels and dim >= 1; got "
                         f"ratios={list(ratios)}, channels={channels}, dim={dim}")


class ConvEncoder(nn.Module, Encoder):
    """Waveform ``(batch, channels, time)`` -> latent ``(batch, dim, ceil(time / hop))``.

    One strided convolution per entry of ``ratios`` (``hop_length`` is their product), each
    doubling the width from ``width``, with ELU activations.
    """

    def __init__(self, channels: int = 1, dim: int = 32, width: int = 16,
                 ratios: Sequence[int] = (4, 4, 4)) -> None:
        super().__init__()
        _check(ratios, channels, dim)
        self.channels, self.dim, self.hop_length = channels, dim, math.prod(ratios)
        layers: list[nn.Module] = [nn.Conv1d(channels, width, 7, padding=3)]
        w = width
        for r in ratios:
            layers += [nn.ELU(), nn.Conv1d(w, 2 * w, 2 * r, stride=r, padding=math.ceil(r / 2))]
            w *= 2
        layers += [nn.ELU(), nn.Conv1d(w, dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, waveform: Tensor) -> Tensor:
        pad = -waveform.shape[-1] % self.hop_length
        out = self.net(F.pad(waveform, (0, pad)))
        return out[..., : (waveform.shape[-1] + pad) // self.hop_length]


class ConvDecoder(nn.Module, Decoder):
    """Latent ``(batch, dim, frames)`` -> waveform ``(batch, channels, frames * hop)``.

    Mirrors :class:`ConvEncoder` with transposed convolutions; output in ``[-1, 1]`` (tanh).
    """

    def __init__(self, channels: int = 1, dim: int = 32, width: int = 16,
                 ratios: Sequence[int] = (4, 4, 4)) -> None:
        super().__init__()
        _check(ratios, channels, dim)
        self.channels, self.dim, self.hop_length = channels, dim, math.prod(ratios)
        w = width * 2 ** len(ratios)
        layers: list[nn.Module] = [nn.Conv1d(dim, w, 7, padding=3)]
        for r in reversed(ratios):
            layers += [nn.ELU(), nn.ConvTranspose1d(w, w // 2, 2 * r, stride=r,
                                                    padding=r // 2, output_padding=r % 2)]
            w //= 2
        layers += [nn.ELU(), nn.Conv1d(w, channels, 7, padding=3), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, latent: Tensor) -> Tensor:
        return self.net(latent)[..., : latent.shape[-1] * self.hop_length]
