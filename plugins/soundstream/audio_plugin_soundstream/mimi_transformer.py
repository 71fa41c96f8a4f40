"""The causal transformer of Mimi's encoder and decoder (at the SEANet frame rate).

Tokens ``(batch, frames, dim)`` -> same shape. Each of ``layers`` pre-norm blocks adds

- ``attn_scale * attention(layer_norm(x))``: multi-head self-attention with rotary
  positions (frame ``n`` of the call is position ``n``), ``kv_heads`` key/value heads
  shared by groups of query heads, and a causal sliding window: frame ``i`` sees frames
  ``j`` with ``i - window < j <= i``;
- ``mlp_scale * mlp(layer_norm(x))``: ``Linear(dim, ffn_dim) -> GELU -> Linear(ffn_dim,
  dim)`` without biases;

``attn_scale``/``mlp_scale`` are learned per-channel layer scales (``(dim,)``, initialised
to ``layer_scale``). Offline (``forward``): the whole sequence in one call. Streaming
(:meth:`MimiTransformer.stream`): frames chunk by chunk, each layer keeping the rotated
keys and values of the last ``window - 1`` frames in a
:class:`~audio_plugin_soundstream.streaming.StreamingState` and the rotary positions
continuing from the frames already seen, so every frame attends exactly the keys it does
offline (the outputs equal the offline ones to float rounding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.attention import rotary
from audio_plugin_soundstream.streaming import StreamingState


def rotary_table(tokens: int, head_dim: int, theta: float, device: torch.device,
                 dtype: torch.dtype, start: int = 0) -> tuple[Tensor, Tensor]:
    """``cos``, ``sin`` ``(tokens, head_dim / 2)`` of angle ``n * theta ** (-2 i /
    head_dim)`` for tokens ``n = start .. start + tokens - 1``, pair ``i`` (the frequencies
    computed as powers of ``theta``, as the published weights were trained with)."""
    freqs = torch.pow(theta, torch.arange(0, head_dim, 2, device=device).float() / head_dim)
    positions = torch.arange(start, start + tokens, device=device).float()
    angles = positions[:, None] * freqs.reciprocal()
    return angles.cos().to(dtype), angles.sin().to(dtype)


def window_mask(tokens: int, window: int, device: torch.device, past: int = 0) -> Tensor:
    """Bool ``(tokens, past + tokens)``: query ``i`` (the ``past + i``-th frame) may attend
    key ``j`` iff ``past + i - window < j <= past + i``."""
    lag = (torch.arange(tokens, device=device)[:, None] + past
           - torch.arange(past + tokens, device=device)[None, :])
    return (lag >= 0) & (lag < window)


class WindowedAttention(nn.Module):
    """Self-attention ``(batch, frames, dim)`` -> same shape: projections ``q``, ``k``,
    ``v``, ``out`` (``bias`` on all or none), ``heads`` query heads of ``head_dim``,
    ``kv_heads`` key/value heads (``heads`` a multiple of it)."""

    def __init__(self, dim: int, heads: int, kv_heads: int, head_dim: int,
                 bias: bool = False) -> None:
        super().__init__()
        if heads % kv_heads:
            raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
        self.heads, self.kv_heads = heads, kv_heads
        self.q = nn.Linear(dim, heads * head_dim, bias=bias)
        self.k = nn.Linear(dim, kv_heads * head_dim, bias=bias)
        self.v = nn.Linear(dim, kv_heads * head_dim, bias=bias)
        self.out = nn.Linear(heads * head_dim, dim, bias=bias)

    def forward(self, x: Tensor, angles: tuple[Tensor, Tensor], mask: Tensor,
                state: StreamingState | None = None, keep: int = 0) -> Tensor:
        """``x`` ``(batch, frames, dim)``, rotary ``angles`` ``(frames, head_dim / 2)``
        each, ``mask`` bool ``(frames, past + frames)``. With a ``state`` (streaming) the
        ``past`` cached keys/values ``(batch, kv_heads, past, head_dim)`` come first and the
        last ``keep`` of all are cached for the next chunk; without, ``past`` is 0."""
        q = rotary(rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads), angles)
        k = rotary(rearrange(self.k(x), "b n (h d) -> b h n d", h=self.kv_heads), angles)
        v = rearrange(self.v(x), "b n (h d) -> b h n d", h=self.kv_heads)
        if state is not None:
            past_k, past_v = state.get(self, lambda: (k[:, :, :0], v[:, :, :0]))
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
            first = max(0, k.shape[2] - keep)
            state[self] = (k[:, :, first:], v[:, :, first:])
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           enable_gqa=self.heads != self.kv_heads)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))


class MimiTransformerLayer(nn.Module):
    """One pre-norm block (module docstring): ``(batch, frames, dim)`` -> same shape."""

    def __init__(self, dim: int, heads: int, kv_heads: int, head_dim: int, ffn_dim: int,
                 layer_scale: float, norm_eps: float, bias: bool) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = WindowedAttention(dim, heads, kv_heads, head_dim, bias)
        self.attn_scale = nn.Parameter(torch.full((dim,), float(layer_scale)))
        self.mlp_norm = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = nn.Sequential(nn.Linear(dim, ffn_dim, bias=False), nn.GELU(),
                                 nn.Linear(ffn_dim, dim, bias=False))
        self.mlp_scale = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: Tensor, angles: tuple[Tensor, Tensor], mask: Tensor,
                state: StreamingState | None = None, keep: int = 0) -> Tensor:
        """As :meth:`WindowedAttention.forward` (``state``, ``keep``: streaming)."""
        x = x + self.attn_scale * self.attn(self.attn_norm(x), angles, mask, state, keep)
        return x + self.mlp_scale * self.mlp(self.mlp_norm(x))


class MimiTransformer(nn.Module):
    """``layers`` :class:`MimiTransformerLayer` s: tokens ``(batch, frames, dim)`` -> same
    shape (module docstring). ``head_dim`` defaults to ``dim // heads``, ``kv_heads`` to
    ``heads``; ``theta`` is the rotary base."""

    def __init__(self, dim: int, layers: int = 8, heads: int = 8, kv_heads: int | None = None,
                 head_dim: int | None = None, ffn_dim: int = 2048, window: int = 250,
                 theta: float = 10000.0, layer_scale: float = 0.01, norm_eps: float = 1e-5,
                 bias: bool = False) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        self.head_dim = head_dim or dim // heads
        if self.head_dim % 2:
            raise ValueError(f"rotary positions need an even head_dim, got {self.head_dim}")
        self.window, self.theta = int(window), float(theta)
        self.layers = nn.ModuleList(
            MimiTransformerLayer(dim, heads, kv_heads or heads, self.head_dim, ffn_dim,
                                 layer_scale, norm_eps, bias) for _ in range(layers))

    def forward(self, x: Tensor) -> Tensor:
        angles = rotary_table(x.shape[1], self.head_dim, self.theta, x.device, x.dtype)
        mask = window_mask(x.shape[1], self.window, x.device)
        for layer in self.layers:
            x = layer(x, angles, mask)
        return x

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        """The next frames ``(batch, n, dim)`` of a stream (any ``n``, 0 too) -> their
        outputs ``(batch, n, dim)``, equal to the offline ones (module docstring): each
        layer attends the cached last ``window - 1`` frames and the new ones."""
        if x.shape[1] == 0:
            return x
        start = state.get(self, lambda: 0)
        past = min(start, self.window - 1)
        angles = rotary_table(x.shape[1], self.head_dim, self.theta, x.device, x.dtype, start)
        mask = window_mask(x.shape[1], self.window, x.device, past)
        for layer in self.layers:
            x = layer(x, angles, mask, state, self.window - 1)
        state[self] = start + x.shape[1]
        return x
