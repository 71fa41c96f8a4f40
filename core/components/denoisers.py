"""Denoisers: networks ``net(x, t, cond)`` over latents ``(batch, dim, frames)``.

``t`` ``(batch,)`` is the objective's *network time* (EDM: ``log(sigma) / 4``; v-diffusion
and rectified flow: ``t`` in [0, 1]); ``cond`` is a :class:`Conditioning` or ``None``. The
output, shaped like ``x``, is whatever the objective trains the network to predict.

- :class:`ConvDenoiser` (``core.conv_denoiser``): residual dilated 1-D conv blocks with
  FiLM from time and pooled conditioning, optional cross-attention over the tokens;
- :class:`FrameDenoiser` (``core.frame_denoiser``): a tiny conv stack, for tests and demos.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.attention import CrossAttention, multihead_keys
from audio_core.contracts.components import Denoiser
from audio_core.contracts.records import Conditioning


class SinusoidalTimeEmbedding(nn.Module):
    """``t`` ``(batch,)`` (any float range) -> ``(batch, features)``: ``t`` itself plus sin
    and cos at ``(features - 1) // 2`` frequencies spaced geometrically from 1 to
    ``max_frequency`` rad per unit of ``t``, zero-padded to ``features``."""

    freqs: Tensor  # buffer (dim // 2,)

    def __init__(self, features: int = 64, max_frequency: float = 100.0) -> None:
        super().__init__()
        if features < 3:
            raise ValueError(f"time embedding needs features >= 3, got {features}")
        half = (features - 1) // 2
        freqs = torch.exp(torch.linspace(0.0, math.log(max_frequency), half))
        self.register_buffer("freqs", freqs, persistent=False)
        self.features = features

    def forward(self, t: Tensor) -> Tensor:
        # explicit 2-D reshapes and axes: the ONNX exporter mis-ranks an einops reshape
        # here from its second call on (an unrolled sampler calls it once per step)
        t = t.float().reshape(-1, 1)
        angles = t * self.freqs
        out = torch.cat([t, angles.sin(), angles.cos()], dim=1)
        return F.pad(out, (0, self.features - out.shape[1]))


def time_mlp(features: int, width: int, max_frequency: float = 100.0) -> nn.Sequential:
    """``t`` ``(batch,)`` -> ``(batch, width)``: :class:`SinusoidalTimeEmbedding` then
    ``Linear -> SiLU -> Linear`` (a denoiser's ``time`` module)."""
    return nn.Sequential(SinusoidalTimeEmbedding(features, max_frequency),
                         nn.Linear(features, width), nn.SiLU(), nn.Linear(width, width))


def time_and_condition(time: nn.Sequential, cond_proj: nn.Linear | None, t: Tensor,
                       cond: Conditioning | None, dtype: torch.dtype, owner: str) -> Tensor:
    """A denoiser's global embedding ``(batch, width)``: ``time(t)`` (:func:`time_mlp`,
    computed in ``dtype`` after the float32 sinusoids) plus ``cond_proj`` of the pooled
    condition ``cond.pooled()`` ``(batch, cond_dim)`` when both are given. A condition of
    another width is an error naming ``owner`` (the denoiser) and both widths."""
    emb = time[1:](time[0](t).to(dtype))
    if cond_proj is None or cond is None:
        return emb
    if cond.embeddings.shape[-1] != cond_proj.in_features:
        raise ValueError(f"{owner} has cond_dim={cond_proj.in_features} but the "
                         f"conditioning has dim {cond.embeddings.shape[-1]}")
    return emb + cond_proj(cond.pooled().to(dtype))


class ChannelLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the channel axis of ``(batch, channels, frames)``: per frame,
    so no frame sees another and lengths never matter."""

    def forward(self, x: Tensor) -> Tensor:
        return rearrange(super().forward(rearrange(x, "b c f -> b f c")), "b f c -> b c f")


def block_cross_attention(hidden: int, cond_dim: int, heads: int) -> CrossAttention:
    """The blocks' cross-attention: frames ``(batch, frames, hidden)`` to condition tokens
    ``(batch, tokens, cond_dim)``, ``heads`` of ``hidden / heads``, query pre-norm, biased
    projections, initialised as ``nn.MultiheadAttention`` (Xavier weights, zero biases).
    Weights saved in that module's layout (``attn.in_proj_weight`` ...) load through a
    state-dict pre-hook."""
    attn = CrossAttention(hidden, heads, hidden // heads, cond_dim, qkv_bias=True)
    for proj in (attn.to_q, attn.to_kv):
        nn.init.xavier_uniform_(proj.weight)
        nn.init.zeros_(proj.bias)
    nn.init.zeros_(attn.to_out.bias)
    attn.register_load_state_dict_pre_hook(_multihead_layout)
    return attn


def _multihead_layout(module: nn.Module, state_dict: dict[str, Tensor], prefix: str,
                      *_: object) -> None:
    """Load-state-dict pre-hook: weights saved before the blocks used core's
    :class:`CrossAttention` hold an ``nn.MultiheadAttention`` under ``attn.``."""
    multihead_keys(state_dict, prefix + "attn.", prefix)


class ResidualBlock(nn.Module):
    """norm -> FiLM(scale, shift from the embedding) -> SiLU -> dilated conv -> SiLU ->
    1x1 conv, added to the input; then optional cross-attention. ``(batch, hidden, frames)``
    in and out."""

    def __init__(self, hidden: int, emb_dim: int, kernel_size: int, dilation: int,
                 cond_dim: int, cross_attention: bool, heads: int) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(hidden)
        self.film = nn.Linear(emb_dim, 2 * hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.mix = nn.Conv1d(hidden, hidden, 1)
        self.cross = block_cross_attention(hidden, cond_dim, heads) if cross_attention else None

    def forward(self, h: Tensor, emb: Tensor, cond: Conditioning | None) -> Tensor:
        scale, shift = rearrange(self.film(emb), "b (two c) -> two b c 1", two=2)
        update = self.norm(h) * (1 + scale) + shift
        h = h + self.mix(F.silu(self.conv(F.silu(update))))
        if self.cross is not None and cond is not None:
            frames = rearrange(h, "b c f -> b f c")
            h = h + rearrange(self.cross.attend(frames, cond), "b f c -> b c f")
        return h


class ConvDenoiser(nn.Module, Denoiser):
    """A small residual 1-D conv denoiser: ``forward(x, t, cond=None)`` with ``x`` ``(batch,
    dim, frames)``, ``t`` ``(batch,)``, returns ``(batch, dim, frames)``.

    ``t`` -> sinusoidal features -> MLP; with ``cond_dim > 0`` the condition's pooled tokens
    (``cond.pooled()``, projected) are added; the sum drives FiLM in each of ``blocks``
    residual blocks (dilation ``dilation_growth ** i``). ``cross_attention`` adds one
    cross-attention layer per block over ``cond.embeddings`` (masked). ``cond_dim = 0`` (or
    ``cond=None``) is unconditional. The output layer starts at zero.
    """

    def __init__(self, dim: int = 32, hidden: int = 128, blocks: int = 4, kernel_size: int = 3,
                 dilation_growth: int = 2, cond_dim: int = 0, cross_attention: bool = False,
                 heads: int = 4, time_features: int = 64) -> None:
        super().__init__()
        if min(dim, hidden, blocks, dilation_growth, heads) < 1 or kernel_size % 2 == 0 \
                or kernel_size < 1 or cond_dim < 0 or hidden % heads:
            raise ValueError(
                "conv_denoiser needs dim, hidden, blocks, dilation_growth, heads >= 1, an odd "
                "kernel_size, cond_dim >= 0 and hidden divisible by heads; got "
                f"dim={dim}, hidden={hidden}, blocks={blocks}, kernel_size={kernel_size}, "
                f"dilation_growth={dilation_growth}, cond_dim={cond_dim}, heads={heads}")
        if cross_attention and cond_dim == 0:
            raise ValueError("conv_denoiser cross_attention needs cond_dim > 0 (the "
                             "conditioner's dim)")
        self.dim, self.hidden, self.cond_dim = dim, hidden, cond_dim
        emb_dim = 4 * hidden
        self.time = time_mlp(time_features, emb_dim)
        self.cond_proj = nn.Linear(cond_dim, emb_dim) if cond_dim else None
        self.inp = nn.Conv1d(dim, hidden, kernel_size, padding=(kernel_size - 1) // 2)
        self.blocks = nn.ModuleList(
            ResidualBlock(hidden, emb_dim, kernel_size, dilation_growth**i, cond_dim,
                          cross_attention, heads) for i in range(blocks))
        self.out_norm = ChannelLayerNorm(hidden)
        self.out = nn.Conv1d(hidden, dim, kernel_size, padding=(kernel_size - 1) // 2)
        nn.init.zeros_(self.out.weight)
        if self.out.bias is not None:
            nn.init.zeros_(self.out.bias)

    def embedding(self, t: Tensor, cond: Conditioning | None) -> Tensor:
        """Time (+ pooled condition) embedding ``(batch, 4 * hidden)``."""
        return F.silu(time_and_condition(self.time, self.cond_proj, t, cond,
                                         self.inp.weight.dtype, "conv_denoiser"))

    def forward(self, x: Tensor, t: Tensor, cond: Conditioning | None = None) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.dim or t.shape != x.shape[:1]:
            raise ValueError(f"conv_denoiser expects x (batch, {self.dim}, frames) and t "
                             f"(batch,); got x {tuple(x.shape)}, t {tuple(t.shape)}")
        cond = cond if self.cond_dim else None
        emb = self.embedding(t, cond)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, emb, cond)
        return self.out(F.silu(self.out_norm(h)))


class FrameDenoiser(nn.Module, Denoiser):
    """A tiny denoiser for latents ``(batch, dim, frames)``: ``forward(x, t, cond=None)``
    (``cond`` ignored) returns a prediction shaped like ``x``; ``t`` enters through a
    sinusoidal embedding (smooth: frequencies up to 10) and an MLP added after the input
    conv."""


    def __init__(self, dim: int = 32, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.dim = dim
        self.embed = nn.Sequential(SinusoidalTimeEmbedding(32, max_frequency=10.0),
                                   nn.Linear(32, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Conv1d(dim, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Conv1d(hidden, hidden, 3, padding=1) for _ in range(layers))
        self.out = nn.Conv1d(hidden, dim, 3, padding=1)

    def forward(self, x: Tensor, t: Tensor, cond: Conditioning | None = None) -> Tensor:
        features = self.embed[0](t).to(self.inp.weight.dtype)
        h = self.inp(x) + rearrange(self.embed[1:](features), "b h -> b h 1")
        for block in self.blocks:
            h = h + block(F.silu(h))
        return self.out(F.silu(h))
