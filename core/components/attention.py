"""Self-attention on tokens ``(batch, tokens, width)`` with optional QK norm and rotary
positions (RoPE: relative, so a model trained on short crops keeps working on longer
sequences), shared by the transformer families (bsq, rae)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def rotary_angles(tokens: int, dim: int, base: float = 10000.0, *,
                  device: torch.device | None = None,
                  dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """``cos``, ``sin`` ``(tokens, dim / 2)`` of the rotary angles ``n * base ** (-i / (dim /
    2))`` of token ``n``, pair ``i``."""
    if dim % 2:
        raise ValueError(f"rotary positions need an even head width, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(base) * torch.arange(half, device=device) / half)
    angles = rearrange(torch.arange(tokens, device=device, dtype=torch.float32), "n -> n 1") \
        * freqs
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotary(x: Tensor, angles: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Rotary position embedding of ``x`` ``(batch, heads, tokens, head_dim)``: the pair
    ``(x_i, x_{i + head_dim / 2})`` of token ``n`` is rotated by its angle
    (:func:`rotary_angles`, made here when not given), so a query-key product depends only
    on the tokens' distance."""
    cos, sin = angles if angles is not None else rotary_angles(
        *x.shape[-2:], device=x.device, dtype=x.dtype)
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention ``(batch, tokens, width)`` -> same shape, on
    ``scaled_dot_product_attention``: a fused ``qkv`` projection, optional per-head QK layer
    norm (``qk_norm``), rotary positions (``rope``) and attention ``dropout`` (training
    only); ``mask`` bool ``(batch, tokens)`` (True = real) keeps padding out of the keys.
    ``proj_name`` names the output projection's attribute (``proj``; a family whose saved
    weights call it otherwise keeps its name)."""

    def __init__(self, width: int, heads: int, qk_norm: bool = False,
                 rope: bool = False, dropout: float = 0.0, proj_name: str = "proj") -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"attention width {width} is not divisible by heads {heads}")
        self.heads, self.rope, self.dropout = heads, rope, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self._proj_name = proj_name
        self.add_module(proj_name, nn.Linear(width, width))
        head = width // heads
        self.q_norm = nn.LayerNorm(head) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(head) if qk_norm else nn.Identity()

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3,
                            h=self.heads)
        keys = None if mask is None else rearrange(mask, "b n -> b 1 1 n")
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope:  # one angle table for queries and keys
            angles = rotary_angles(*q.shape[-2:], device=q.device, dtype=q.dtype)
            q, k = rotary(q, angles), rotary(k, angles)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys,
                                             dropout_p=self.dropout if self.training else 0.0)
        proj = getattr(self, self._proj_name)
        return proj(rearrange(out, "b h n d -> b n (h d)"))
