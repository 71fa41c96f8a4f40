"""Transformer pieces shared by the ViT decoder and the DiT denoiser.

Tokens are ``(batch, tokens, width)`` throughout; positions are fixed 1-D sin-cos
embeddings added to the tokens, or rotary embeddings (RoPE) of the queries and keys, both
computed for the length at hand, so any number of tokens works. Rotary positions are
relative: a model trained on short crops keeps working on longer sequences.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.attention import SelfAttention as Attention


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
