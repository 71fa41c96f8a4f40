"""Transformer pieces shared by the ViT decoder and the DiT denoiser.

Tokens are ``(batch, tokens, width)`` throughout; positions are fixed 1-D sin-cos
embeddings added to the tokens, or rotary embeddings (RoPE) of the queries and keys, both
computed for the length at hand, so any number of tokens works. Rotary positions are
relative: a model trained on short crops keeps working on longer sequences.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def sincos_positions(tokens: int, width: int, *, device: torch.device | None = None,
                     dtype: torch.dtype = torch.float32) -> Tensor:
    """Fixed sin-cos position embeddings ``(tokens, width)`` (first half sin, second cos,
    frequencies ``10000 ** (-i / (width / 2))``), as the MAE/DiT 1-D recipe."""
    if width % 2:
        raise ValueError(f"sin-cos positions need an even width, got {width}")
    half = width // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=device) / half)
    angles = rearrange(torch.arange(tokens, device=device, dtype=torch.float32), "n -> n 1") \
        * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)


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


class Attention(nn.Module):
    """Multi-head self-attention over ``(batch, tokens, width)`` with optional QK layer norm
    and rotary positions (``rope``); ``mask`` bool ``(batch, tokens)`` (True = real) keeps
    padding out of the keys."""

    def __init__(self, width: int, heads: int, qk_norm: bool = True,
                 rope: bool = False) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"attention width {width} is not divisible by heads {heads}")
        self.heads, self.rope = heads, rope
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
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
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class MLP(nn.Sequential):
    """``width -> hidden -> width`` with GELU (tanh approximation)."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__(nn.Linear(width, hidden), nn.GELU(approximate="tanh"),
                         nn.Linear(hidden, width))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0,
                 qk_norm: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, qk_norm)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = MLP(width, int(width * mlp_ratio))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: ``x * (1 + scale) + shift``; ``shift``/``scale`` are ``(batch, width)`` (one
    per example) or ``(batch, tokens, width)`` (one per token)."""
    if shift.ndim == 2:
        shift, scale = rearrange(shift, "b w -> b 1 w"), rearrange(scale, "b w -> b 1 w")
    return x * (1 + scale) + shift


def gate(x: Tensor, value: Tensor) -> Tensor:
    """``value * x`` with ``value`` ``(batch, width)`` or ``(batch, tokens, width)``."""
    return x * (rearrange(value, "b w -> b 1 w") if value.ndim == 2 else value)


class AdaLNBlock(nn.Module):
    """DiT block with adaLN-Zero: the conditioning ``c`` (``(batch, cond_width)`` or one
    vector per token ``(batch, tokens, cond_width)``) gives shift, scale and gate of the
    attention and MLP branches; the modulation starts at zero, so the block starts as the
    identity. ``rope``: rotary positions in the attention."""

    def __init__(self, width: int, heads: int, cond_width: int, mlp_ratio: float = 4.0,
                 qk_norm: bool = True, rope: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads, qk_norm, rope)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = MLP(width, int(width * mlp_ratio))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_width, 6 * width))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).chunk(6, dim=-1)
        x = x + gate(self.attn(modulate(self.norm1(x), shift1, scale1)), gate1)
        return x + gate(self.mlp(modulate(self.norm2(x), shift2, scale2)), gate2)


class AdaLNOutput(nn.Module):
    """Final DiT layer: adaLN (shift, scale from ``c``) then a zero-initialised linear map
    ``width -> out_features``."""

    def __init__(self, width: int, cond_width: int, out_features: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_width, 2 * width))
        self.linear = nn.Linear(width, out_features)
        for layer in (self.modulation[1], self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))
