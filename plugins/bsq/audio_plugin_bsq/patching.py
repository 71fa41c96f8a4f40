"""Time-frequency patches of a spectrogram and their learnable position embeddings."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn


def check_grid(n_mels: int, patch_freq: int, max_frames: int, patch_time: int
               ) -> tuple[int, int]:
    """``(max time patches, frequency patches)``; ``n_mels`` must divide into patches."""
    if n_mels % patch_freq:
        raise ValueError(f"n_mels={n_mels} is not a multiple of patch_freq={patch_freq}")
    return math.ceil(max_frames / patch_time), n_mels // patch_freq


class PositionEmbedding(nn.Module):
    """Learnable time ``(max_time, width)`` + frequency ``(freq, width)`` embeddings, summed
    per token: ``forward(time_patches)`` -> ``(time_patches * freq, width)``, time-major."""

    def __init__(self, max_time: int, freq: int, width: int) -> None:
        super().__init__()
        self.time = nn.Parameter(torch.randn(max_time, width) * 0.02)
        self.freq = nn.Parameter(torch.randn(freq, width) * 0.02)

    def forward(self, time_patches: int) -> Tensor:
        if time_patches > self.time.shape[0]:
            raise ValueError(f"{time_patches} time patches exceed the maximum "
                             f"{self.time.shape[0]} (raise max_frames)")
        grid = self.time[:time_patches, None, :] + self.freq[None, :, :]
        return rearrange(grid, "t f d -> (t f) d")


class PatchEmbed(nn.Module):
    """Spectrogram ``(batch, n_mels, frames)`` -> tokens ``(batch, time * freq, width)``.

    ``frames`` must be a multiple of ``patch_time``; tokens are ordered time-major.
    """

    def __init__(self, patch_time: int, patch_freq: int, width: int) -> None:
        super().__init__()
        self.patch_time, self.patch_freq = patch_time, patch_freq
        self.proj = nn.Linear(patch_time * patch_freq, width)

    def forward(self, spec: Tensor) -> Tensor:
        if spec.shape[-1] % self.patch_time:
            raise ValueError(f"{spec.shape[-1]} frames is not a multiple of "
                             f"patch_time={self.patch_time}")
        patches = rearrange(spec, "b (f pf) (t pt) -> b (t f) (pf pt)", pf=self.patch_freq,
                            pt=self.patch_time)
        return self.proj(patches)


class PatchUnembed(nn.Module):
    """Tokens ``(batch, time * freq, width)`` -> spectrogram ``(batch, n_mels, frames)``."""

    def __init__(self, patch_time: int, patch_freq: int, width: int, freq_patches: int) -> None:
        super().__init__()
        self.patch_time, self.patch_freq, self.freq_patches = patch_time, patch_freq, freq_patches
        self.proj = nn.Linear(width, patch_time * patch_freq)

    def forward(self, tokens: Tensor) -> Tensor:
        return rearrange(self.proj(tokens), "b (t f) (pf pt) -> b (f pf) (t pt)",
                         f=self.freq_patches, pf=self.patch_freq, pt=self.patch_time)
