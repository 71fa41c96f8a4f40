"""Multi-resolution front end: a fixed, causal, undecimated Haar analysis filterbank.

``levels`` levels of the stationary (a trous) Haar transform split each input channel into
``levels`` detail bands (octaves from ``sample_rate / 4`` up) and one approximation band,
all at the input sample rate, so the encoder's first convolution sees the waveform at
several time resolutions at once. The filters are fixed (a buffer, not trained).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_plugin_soundstream.streaming import StreamingState


def haar_filters(levels: int) -> Tensor:
    """Composite analysis filters ``(levels + 1, 2 ** levels)``: details of level 1..levels,
    then the level-``levels`` approximation (zero-padded at the start to a common length)."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    low, bands = np.ones(1), []
    for level in range(levels):
        lo, hi = np.zeros(2 ** level + 1), np.zeros(2 ** level + 1)  # filters dilated 2^level
        lo[0], lo[-1], hi[0], hi[-1] = 0.5, 0.5, 0.5, -0.5
        bands.append(np.convolve(low, hi))
        low = np.convolve(low, lo)
    size = 2 ** levels
    out = np.zeros((levels + 1, size))
    for i, band in enumerate([*bands, low]):
        out[i, size - band.size:] = band
    return torch.from_numpy(out).float()


class HaarFrontEnd(nn.Module):
    """``(batch, channels, time)`` -> ``(batch, channels * (levels + 1), time)``, causal."""

    def __init__(self, channels: int = 1, levels: int = 3) -> None:
        super().__init__()
        self.channels, self.levels = channels, levels
        self.out_channels = channels * (levels + 1)
        filters = rearrange(haar_filters(levels), "bands k -> bands 1 k")
        self.register_buffer("filters", filters.repeat(channels, 1, 1), persistent=False)
        self.context = filters.shape[-1] - 1

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(F.pad(x, (self.context, 0)), self.filters.to(x.dtype),
                        groups=self.channels)

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        past = state.get(self, lambda: x.new_zeros(*x.shape[:-1], self.context))
        full = torch.cat([past, x], dim=-1)
        state[self] = full[..., full.shape[-1] - self.context:]
        return F.conv1d(full, self.filters.to(x.dtype), groups=self.channels)
