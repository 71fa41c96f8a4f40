"""Self-organising-map neighbourhood for EMA codebook updates.

Codes sit on a ring ``0 .. K-1``. With a SOM update, a vector assigned to code ``i`` also
pulls codes ``j`` near ``i`` on the ring, with weight ``exp(-d(i, j)^2 / (2 sigma^2))``.
Neighbouring codes so end up similar (an ordered codebook) and codes the data never picks
still move towards it. ``sigma`` shrinks geometrically with the update count until it
falls below ``sigma_min``; from then on the update is the plain EMA one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def neighbourhood_kernel(sigma: float, size: int) -> Tensor:
    """Gaussian weights ``(2 r + 1,)`` over ring offsets ``-r .. r`` (``r = ceil(3 sigma)``,
    at most ``size // 2``), centre weight 1."""
    radius = min(size // 2, max(1, math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return torch.exp(-offsets.pow(2) / (2 * sigma**2))


def sigma_at(updates: int, sigma: float, decay: float, sigma_min: float) -> float:
    """The neighbourhood width after ``updates`` EMA updates (0: neighbourhood off)."""
    value = sigma * decay ** updates
    return value if value >= sigma_min else 0.0


def spread(counts: Tensor, sums: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """Per-code counts ``(K,)`` and vector sums ``(K, dim)`` smoothed over the ring with
    :func:`neighbourhood_kernel` (unchanged when ``sigma`` is 0)."""
    if sigma <= 0:
        return counts, sums
    kernel = neighbourhood_kernel(sigma, counts.shape[0]).to(counts)
    r = kernel.numel() // 2
    stacked = rearrange(torch.cat([counts[:, None], sums], dim=1), "k c -> c 1 k")
    smoothed = F.conv1d(F.pad(stacked, (r, r), mode="circular"), kernel[None, None])
    smoothed = rearrange(smoothed, "c 1 k -> k c")
    return smoothed[:, 0], smoothed[:, 1:]
