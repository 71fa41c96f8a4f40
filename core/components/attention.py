"""Attention on tokens, written once for core and the plugins.

- :class:`SelfAttention`: ``(batch, tokens, width)`` with optional QK norm and rotary
  positions (RoPE: relative, so a model trained on short crops keeps working on longer
  sequences), used by the transformer families (bsq, rae);
- :class:`CrossAttention`: pre-norm queries attending to context tokens (or to themselves),
  with :meth:`CrossAttention.attend` for a :class:`Conditioning` (core's conv denoiser,
  mousai's U-Net); :func:`multihead_keys` loads weights saved from ``nn.MultiheadAttention``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.contracts.records import Conditioning


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


class CrossAttention(nn.Module):
    """Multi-head attention ``heads * head_features`` wide from queries ``x`` ``(batch, n,
    features)`` to ``context`` ``(batch, m, context_features)`` (``None``: to ``x`` itself),
    scaled by ``1 / sqrt(head_features)``. Returns the update ``(batch, n, features)`` (the
    caller adds it).

    Parameters: ``norm`` (LayerNorm of the queries; ``Identity`` with ``norm=False``),
    ``norm_context`` (LayerNorm of a given context, only with ``context_norm``), ``to_q``,
    ``to_kv`` (keys then values; both with ``qkv_bias``), ``to_out`` (all zero at start with
    ``zero_out``, so a fresh layer changes nothing). With ``context=None`` the keys and
    values come from the normed queries.
    """

    def __init__(self, features: int, heads: int, head_features: int,
                 context_features: int | None = None, *, norm: bool = True,
                 context_norm: bool = False, qkv_bias: bool = False,
                 zero_out: bool = False) -> None:
        super().__init__()
        if min(features, heads, head_features) < 1:
            raise ValueError(f"attention needs features, heads, head_features >= 1, got "
                             f"{features}, {heads}, {head_features}")
        inner, context_features = heads * head_features, context_features or features
        self.heads = heads
        self.norm = nn.LayerNorm(features) if norm else nn.Identity()
        self.norm_context = nn.LayerNorm(context_features) if context_norm else nn.Identity()
        self.to_q = nn.Linear(features, inner, bias=qkv_bias)
        self.to_kv = nn.Linear(context_features, 2 * inner, bias=qkv_bias)
        self.to_out = nn.Linear(inner, features)
        if zero_out:
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)

    def forward(self, x: Tensor, context: Tensor | None = None,
                mask: Tensor | None = None) -> Tensor:
        """``x`` ``(batch, n, features)``, ``context`` ``(batch, m, context_features)`` or
        ``None``, ``mask`` bool ``(batch, m)`` True on the keys to attend to (each row
        needs one) -> ``(batch, n, features)``."""
        x = self.norm(x)
        source = x if context is None else self.norm_context(context)
        k, v = self.to_kv(source).chunk(2, dim=-1)
        q, k, v = (rearrange(a, "b n (h d) -> b h n d", h=self.heads)
                   for a in (self.to_q(x), k, v))
        keys = None if mask is None else rearrange(mask.to(x.device), "b m -> b 1 1 m")
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
        return self.to_out(rearrange(out, "b h n d -> b n (h d)"))

    def attend(self, x: Tensor, cond: Conditioning) -> Tensor:
        """The update of ``x`` ``(batch, n, features)`` from the condition's real tokens
        (``cond.embeddings`` ``(batch, m, context_features)``, cast to ``x``'s dtype, under
        ``cond.mask`` ``(batch, m)``): ``(batch, n, features)``, zero on rows without any
        real token (they attend to all their tokens, to stay finite, then are zeroed)."""
        has_tokens = cond.mask.to(x.device).any(1)
        mask = cond.mask.to(x.device) | rearrange(~has_tokens, "b -> b 1")
        update = self(x, cond.embeddings.to(device=x.device, dtype=x.dtype), mask)
        return update * rearrange(has_tokens, "b -> b 1 1").to(update.dtype)


def multihead_keys(state_dict: dict[str, Tensor], source: str, target: str) -> None:
    """Rename, in place, an ``nn.MultiheadAttention``'s weights saved under the key prefix
    ``source`` to :class:`CrossAttention`'s under ``target``: ``in_proj_weight`` ``(3 *
    inner, features)`` (or ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` when the
    key width differs) -> ``to_q.weight`` ``(inner, features)`` and ``to_kv.weight`` ``(2 *
    inner, context_features)``; ``in_proj_bias`` ``(3 * inner,)`` likewise; ``out_proj.*``
    -> ``to_out.*``. The split is MultiheadAttention's own (queries, keys, values; heads
    contiguous), so the renamed layer with ``qkv_bias`` computes the same. Keys not there
    are left alone (``load_state_dict`` then names what is missing)."""
    separate = [source + f"{name}_proj_weight" for name in "qkv"]
    if all(key in state_dict for key in separate):
        q, k, v = (state_dict.pop(key) for key in separate)
        state_dict[target + "to_q.weight"] = q
        state_dict[target + "to_kv.weight"] = torch.cat([k, v])
    for kind in ("weight", "bias"):
        packed = state_dict.pop(source + f"in_proj_{kind}", None)
        if packed is not None:
            inner = packed.shape[0] // 3
            state_dict[target + f"to_q.{kind}"] = packed[:inner]
            state_dict[target + f"to_kv.{kind}"] = packed[inner:]
        if source + f"out_proj.{kind}" in state_dict:
            state_dict[target + f"to_out.{kind}"] = state_dict.pop(source + f"out_proj.{kind}")
