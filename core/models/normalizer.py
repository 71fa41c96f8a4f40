"""Per-channel latent normalisation stored with a model (``audio-core stats`` output)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn


class LatentNormalizer(nn.Module):
    """``normalize(x) = (x - mean) / std`` and its inverse over latents ``(batch, dim,
    frames)``. ``mean``/``std`` ``(dim,)`` are buffers (exported with the weights); the
    identity until :meth:`load` fills them from a statistics file."""

    mean: Tensor  # buffers (dim,)
    std: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = int(dim)
        self.register_buffer("mean", torch.zeros(self.dim))
        self.register_buffer("std", torch.ones(self.dim))

    def load(self, path: str | Path) -> LatentNormalizer:
        from audio_core.models.latent_stats import load_stats

        stats, _ = load_stats(path, self.dim)
        self.mean.copy_(stats["mean"])
        self.std.copy_(stats["std"])
        return self

    def normalize(self, latent: Tensor) -> Tensor:
        mean, std = (b.to(latent.device, latent.dtype)[:, None] for b in (self.mean, self.std))
        return (latent - mean) / std

    def denormalize(self, latent: Tensor) -> Tensor:
        mean, std = (b.to(latent.device, latent.dtype)[:, None] for b in (self.mean, self.std))
        return latent * std + mean

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
