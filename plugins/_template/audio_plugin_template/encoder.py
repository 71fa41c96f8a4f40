"""The template encoder: a strided convolution, a nonlinearity and a projection."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audio_core.contracts.components import Encoder


class ConvEncoder(nn.Module, Encoder):
    """Waveform ``(batch, channels, time)`` -> latent ``(batch, dim, frames)``.

    ``frames = ceil(time / hop_length)``; the waveform is zero-padded on the right.
    ``hop_length`` and ``dim`` are attributes because decoders and the engine read them.
    """

    def __init__(self, dim: int = 32, hop_length: int = 256, channels: int = 1,
                 hidden: int = 64) -> None:
        super().__init__()
        self.dim, self.hop_length, self.channels = dim, hop_length, channels
        self.net = nn.Sequential(
            nn.Conv1d(channels, hidden, kernel_size=hop_length, stride=hop_length),
            nn.GELU(),
            nn.Conv1d(hidden, dim, kernel_size=1),
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.ndim != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"expected a waveform (batch, {self.channels}, time), "
                             f"got shape {tuple(waveform.shape)}")
        pad = -waveform.shape[-1] % self.hop_length
        return self.net(F.pad(waveform, (0, pad)))
