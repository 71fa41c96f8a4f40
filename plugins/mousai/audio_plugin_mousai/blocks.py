"""Building blocks of the encoder and the U-Net, all on ``(batch, channels, length)``.

- :class:`ResnetBlock`: two GroupNorm-SiLU-conv layers, FiLM from an embedding in between;
- :class:`TransformerItem`: optional self-attention, optional cross-attention (core's
  :class:`~audio_core.components.attention.CrossAttention`), feed-forward;
- :func:`downsample` / :class:`Upsample`: strided conv / nearest upsampling + conv;
- :class:`InjectLatent`: a latent on the same frame grid mixed in by a 1x1 conv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.attention import CrossAttention
from audio_core.contracts.records import Conditioning


def group_count(channels: int, groups: int) -> int:
    """The largest divisor of ``channels`` that is at most ``groups`` (for GroupNorm)."""
    return max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)


def norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_count(channels, groups), channels)


class ResnetBlock(nn.Module):
    """``(batch, channels, length)`` -> same: ``x + conv(SiLU(FiLM(norm(conv(SiLU(norm(x)))))))``
    with FiLM ``(1 + scale) * h + shift`` from ``emb`` ``(batch, emb_dim)`` when ``emb_dim > 0``.
    """

    def __init__(self, channels: int, emb_dim: int = 0, groups: int = 8,
                 kernel_size: int = 3) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.norm1, self.norm2 = norm(channels, groups), norm(channels, groups)
        self.conv1 = nn.Conv1d(channels, channels, kernel_size, padding=pad)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size, padding=pad)
        self.film = nn.Linear(emb_dim, 2 * channels) if emb_dim else None

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        if self.film is not None:
            scale, shift = rearrange(self.film(emb), "b (two c) -> two b c 1", two=2)
            h = h * (1 + scale) + shift
        return x + self.conv2(F.silu(h))


def downsample(in_channels: int, out_channels: int, factor: int) -> nn.Conv1d:
    """A strided conv: ``(batch, in, length)`` -> ``(batch, out, length / factor)`` (kernel
    ``factor + 2 * (factor // 2)``, so neighbouring windows overlap; factor 1: 1x1 conv)."""
    return nn.Conv1d(in_channels, out_channels, factor + 2 * (factor // 2), stride=factor,
                     padding=factor // 2)


class Upsample(nn.Module):
    """``(batch, in, length)`` -> ``(batch, out, length * factor)``: nearest-neighbour
    repetition, then a conv (kernel 3; factor 1: 1x1)."""

    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        self.factor = int(factor)
        kernel = 3 if factor > 1 else 1
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        if self.factor > 1:
            x = x.repeat_interleave(self.factor, dim=-1)
        return self.conv(x)


class TransformerItem(nn.Module):
    """``(batch, channels, length)`` -> same: self-attention over the frames (optional),
    cross-attention to condition tokens (optional; rows without any real token get no
    update), then a feed-forward layer; each a pre-norm residual. Both attentions are
    ``heads x head_features`` wide with unbiased query/key/value projections and zero-init
    outputs; the cross-attention also layer-norms the tokens."""

    def __init__(self, channels: int, heads: int, head_features: int, self_attention: bool,
                 cond_dim: int = 0, ff_multiplier: int = 2) -> None:
        super().__init__()
        self.attend = CrossAttention(channels, heads, head_features, zero_out=True) \
            if self_attention else None
        self.cross = CrossAttention(channels, heads, head_features, cond_dim, context_norm=True,
                                    zero_out=True) if cond_dim else None
        self.ff = nn.Sequential(nn.LayerNorm(channels),
                                nn.Linear(channels, ff_multiplier * channels), nn.GELU(),
                                nn.Linear(ff_multiplier * channels, channels))

    def forward(self, x: Tensor, cond: Conditioning | None = None) -> Tensor:
        h = rearrange(x, "b c n -> b n c")
        if self.attend is not None:
            h = h + self.attend(h)
        if self.cross is not None and cond is not None:
            h = h + self.cross.attend(h, cond)
        h = h + self.ff(h)
        return rearrange(h, "b n c -> b c n")


class InjectLatent(nn.Module):
    """``h + conv1x1([h; latent])`` for ``h`` ``(batch, channels, n)`` and ``latent`` ``(batch,
    latent_dim, n)`` on the same frame grid."""

    def __init__(self, channels: int, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.mix = nn.Conv1d(channels + latent_dim, channels, 1)

    def forward(self, h: Tensor, latent: Tensor) -> Tensor:
        expected = (h.shape[0], self.latent_dim, h.shape[-1])
        if tuple(latent.shape) != expected:
            raise ValueError(f"the injected latent must be (batch, latent_dim, frames) = "
                             f"{expected} at this depth, got {tuple(latent.shape)}")
        return h + self.mix(torch.cat([h, latent.to(h.dtype)], dim=1))
