"""``mousai.unet``: the 1-D U-Net of Moûsai, a denoiser ``net(x, t, cond, latent=None)``.

``x`` ``(batch, dim, length)`` (a waveform for the diffusion autoencoder's decoder, a latent
for the text-to-latent generator) goes through a learned-transform patching (a conv with
window = stride = ``patch_size``, undone by a transposed conv at the end), then one level
per entry of ``channels``: level ``i`` downsamples by ``factors[i]`` to ``channels[i]``
channels and holds ``items[i]`` items (a resnet block with FiLM from the time embedding, and
a transformer item where ``attentions[i]`` (self-attention) or ``cross_attentions[i]``
(cross-attention to the condition's tokens) is set), on the way down and again on the way up
after merging the skip connection. A latent ``(batch, inject_dim, length / downsampling(
inject_depth))`` can be injected at level ``inject_depth`` (the diffusion autoencoder's
encoding). ``length`` must be a multiple of :attr:`UNet1d.length_multiple`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from audio_core.audio.dsp.real_stft import onnx_tracing
from audio_core.components.denoisers import SinusoidalTimeEmbedding
from audio_core.contracts.components import Denoiser
from audio_core.contracts.records import Conditioning
from audio_plugin_mousai.blocks import (
    InjectLatent,
    ResnetBlock,
    TransformerItem,
    Upsample,
    downsample,
    norm,
)


class Item(nn.Module):
    """A resnet block, then (optionally) a transformer item; ``(batch, channels, n)``."""

    def __init__(self, channels: int, emb_dim: int, groups: int, heads: int,
                 head_features: int, attention: bool, cond_dim: int) -> None:
        super().__init__()
        self.resnet = ResnetBlock(channels, emb_dim, groups)
        self.transformer = TransformerItem(channels, heads, head_features, attention, cond_dim) \
            if attention or cond_dim else None

    def forward(self, h: Tensor, emb: Tensor, cond: Conditioning | None) -> Tensor:
        h = self.resnet(h, emb)
        return h if self.transformer is None else self.transformer(h, cond)


class Level(nn.Module):
    """One U-Net level: ``encode`` (downsample, inject, items) and ``decode`` (merge the
    skip, inject, items, upsample back to the outer level's channels)."""

    def __init__(self, outer: int, channels: int, factor: int, items: int, *, attention: bool,
                 cond_dim: int, inject_dim: int, emb_dim: int, groups: int, heads: int,
                 head_features: int) -> None:
        super().__init__()

        def stack() -> nn.ModuleList:
            return nn.ModuleList(Item(channels, emb_dim, groups, heads, head_features,
                                      attention, cond_dim) for _ in range(items))

        self.down = downsample(outer, channels, factor)
        self.down_items, self.up_items = stack(), stack()
        self.merge = nn.Conv1d(2 * channels, channels, 1)
        self.inject_down = InjectLatent(channels, inject_dim) if inject_dim else None
        self.inject_up = InjectLatent(channels, inject_dim) if inject_dim else None
        self.up = Upsample(channels, outer, factor)
        self.checkpointing = False

    def _items(self, items: nn.ModuleList, h: Tensor, emb: Tensor,
               cond: Conditioning | None) -> Tensor:
        for item in items:
            if self.checkpointing and torch.is_grad_enabled():
                h = checkpoint(item, h, emb, cond, use_reentrant=False)
            else:
                h = item(h, emb, cond)
        return h

    def encode(self, h: Tensor, emb: Tensor, cond: Conditioning | None,
               latent: Tensor | None) -> Tensor:
        h = self.down(h)
        if self.inject_down is not None:
            h = self.inject_down(h, latent)
        return self._items(self.down_items, h, emb, cond)

    def decode(self, h: Tensor, skip: Tensor, emb: Tensor, cond: Conditioning | None,
               latent: Tensor | None) -> Tensor:
        h = self.merge(torch.cat([h, skip], dim=1))
        if self.inject_up is not None:
            h = self.inject_up(h, latent)
        return self.up(self._items(self.up_items, h, emb, cond))


def _flags(values: Sequence[int | bool] | None, levels: int, name: str) -> list[bool]:
    values = [False] * levels if values is None else list(values)
    if len(values) != levels:
        raise ValueError(f"mousai.unet {name} needs one entry per level ({levels}), got "
                         f"{len(values)}")
    return [bool(v) for v in values]


class UNet1d(nn.Module, Denoiser):
    """See the module docstring. ``forward(x, t, cond=None, latent=None)``: ``x`` ``(batch,
    dim, length)``, ``t`` ``(batch,)`` (the objective's network time), ``cond`` a
    :class:`Conditioning` (tokens ``(batch, n, cond_dim)`` + mask) or ``None``, ``latent``
    the injected latent (required when ``inject_depth`` is set). Returns ``(batch, out_dim,
    length)`` (``out_dim`` defaults to ``dim``); the output layer starts at zero.

    ``cond_dim`` (> 0: the conditioner's width, supplied by the model) enables
    cross-attention where ``cross_attentions`` says (default: every level with attention) and
    adds the pooled condition to the time embedding (``pooled_conditioning``).
    """

    def __init__(self, dim: int, channels: Sequence[int] = (64, 128, 256),
                 factors: Sequence[int] = (1, 2, 2), items: Sequence[int] = (1, 2, 2),
                 attentions: Sequence[int | bool] | None = None,
                 cross_attentions: Sequence[int | bool] | None = None, patch_size: int = 1,
                 heads: int = 8, head_features: int = 64, cond_dim: int = 0,
                 inject_depth: int | None = None, inject_dim: int = 0, groups: int = 8,
                 emb_dim: int | None = None, time_features: int = 128,
                 pooled_conditioning: bool = True, out_dim: int | None = None,
                 input_skip: bool = True, checkpointing: bool = False) -> None:
        super().__init__()
        levels = len(channels)
        if levels < 1 or len(factors) != levels or len(items) != levels:
            raise ValueError(f"mousai.unet needs channels, factors and items of one common "
                             f"length >= 1, got {len(channels)}, {len(factors)}, {len(items)}")
        if min(dim, patch_size, heads, head_features, *channels, *factors) < 1 \
                or min(items) < 0 or cond_dim < 0:
            raise ValueError(f"mousai.unet needs dim, patch_size, heads, head_features, "
                             f"channels and factors >= 1, items and cond_dim >= 0; got "
                             f"dim={dim}, patch_size={patch_size}, heads={heads}, "
                             f"head_features={head_features}, channels={list(channels)}, "
                             f"factors={list(factors)}, items={list(items)}, cond_dim={cond_dim}")
        attend = _flags(attentions, levels, "attentions")
        cross = _flags(attend if cross_attentions is None else cross_attentions, levels,
                       "cross_attentions")
        if inject_depth is not None and not (0 <= inject_depth < levels and inject_dim > 0):
            raise ValueError(f"mousai.unet inject_depth must be a level in [0, {levels}) with "
                             f"inject_dim > 0, got inject_depth={inject_depth}, "
                             f"inject_dim={inject_dim}")
        self.dim, self.out_dim = int(dim), int(out_dim or dim)
        self.cond_dim, self.inject_depth, self.inject_dim = int(cond_dim), inject_depth, inject_dim
        self.patch_size, self.factors = int(patch_size), [int(f) for f in factors]
        emb_dim = int(emb_dim or 4 * channels[0])
        self.time = nn.Sequential(SinusoidalTimeEmbedding(time_features),
                                  nn.Linear(time_features, emb_dim), nn.SiLU(),
                                  nn.Linear(emb_dim, emb_dim))
        self.cond_proj = nn.Linear(cond_dim, emb_dim) if cond_dim and pooled_conditioning \
            else None
        patch_kernel = patch_size if patch_size > 1 else 3
        self.patch_in = nn.Conv1d(dim, channels[0], patch_kernel, stride=patch_size,
                                  padding=(patch_kernel - patch_size) // 2)
        self.levels = nn.ModuleList(
            Level(channels[max(i - 1, 0)], channels[i], factors[i], items[i],
                  attention=attend[i], cond_dim=cond_dim if cross[i] else 0,
                  inject_dim=inject_dim if i == inject_depth else 0, emb_dim=emb_dim,
                  groups=groups, heads=heads, head_features=head_features)
            for i in range(levels))
        self.out_norm = norm(channels[0], groups)
        self.patch_out = nn.ConvTranspose1d(channels[0], self.out_dim, patch_kernel,
                                            stride=patch_size,
                                            padding=(patch_kernel - patch_size) // 2)
        nn.init.zeros_(self.patch_out.weight)
        nn.init.zeros_(self.patch_out.bias)
        self.input_gain = nn.Linear(emb_dim, self.out_dim) if input_skip else None
        if self.input_gain is not None:
            if self.out_dim != self.dim:
                raise ValueError(f"mousai.unet input_skip needs out_dim == dim, got out_dim="
                                 f"{self.out_dim}, dim={self.dim}")
            nn.init.zeros_(self.input_gain.weight)
            nn.init.zeros_(self.input_gain.bias)
        for level in self.levels:
            level.checkpointing = bool(checkpointing)

    # -- geometry -------------------------------------------------------------------------
    def downsampling(self, depth: int) -> int:
        """Input samples per frame at level ``depth`` (after its downsampling)."""
        return self.patch_size * math.prod(self.factors[: depth + 1])

    @property
    def length_multiple(self) -> int:
        """``length`` must be a multiple of this (the deepest level's downsampling)."""
        return self.downsampling(len(self.factors) - 1)

    # -- forward --------------------------------------------------------------------------
    def embedding(self, t: Tensor, cond: Conditioning | None) -> Tensor:
        """Time (+ pooled condition) embedding ``(batch, emb_dim)``."""
        dtype = self.patch_in.weight.dtype
        emb = self.time[1:](self._time_features(t).to(dtype))
        if self.cond_proj is not None and cond is not None:
            emb = emb + self.cond_proj(cond.pooled().to(dtype))
        return F.silu(emb)

    def _time_features(self, t: Tensor) -> Tensor:
        """``self.time[0](t)`` ``(batch,)`` -> ``(batch, features)``. While an ONNX graph is
        traced, the same sinusoidal features with explicit axes: the exporter mis-ranks the
        einops reshape inside the core module from its second call on (an unrolled sampler
        calls it once per step), giving a graph onnxruntime refuses."""
        embed = self.time[0]
        if not onnx_tracing():
            return embed(t)
        t = t.float().reshape(-1, 1)
        angles = t * embed.freqs
        out = torch.cat([t, angles.sin(), angles.cos()], dim=1)
        return F.pad(out, (0, embed.features - out.shape[1]))

    def _check(self, x: Tensor, t: Tensor, cond: Conditioning | None,
               latent: Tensor | None) -> None:
        if x.ndim != 3 or x.shape[1] != self.dim or t.shape != x.shape[:1]:
            raise ValueError(f"mousai.unet expects x (batch, {self.dim}, length) and t (batch,)"
                             f"; got x {tuple(x.shape)}, t {tuple(t.shape)}")
        if x.shape[-1] % self.length_multiple:
            raise ValueError(f"mousai.unet: length {x.shape[-1]} is not a multiple of "
                             f"{self.length_multiple} (patch_size x the product of factors)")
        if cond is not None and self.cond_dim and cond.embeddings.shape[-1] != self.cond_dim:
            raise ValueError(f"mousai.unet has cond_dim={self.cond_dim} but the conditioning "
                             f"has dim {cond.embeddings.shape[-1]}")
        if self.inject_depth is not None and latent is None:
            raise ValueError(f"mousai.unet injects a latent at depth {self.inject_depth}: pass "
                             f"latent (batch, {self.inject_dim}, length / "
                             f"{self.downsampling(self.inject_depth)})")

    def forward(self, x: Tensor, t: Tensor, cond: Conditioning | None = None,
                latent: Tensor | None = None) -> Tensor:
        self._check(x, t, cond, latent)
        cond = cond if self.cond_dim else None
        emb = self.embedding(t, cond)
        h = self.patch_in(x)
        skips = []
        for depth, level in enumerate(self.levels):
            h = level.encode(h, emb, cond, latent if depth == self.inject_depth else None)
            skips.append(h)
        for depth in reversed(range(len(self.levels))):
            injected = latent if depth == self.inject_depth else None
            h = self.levels[depth].decode(h, skips.pop(), emb, cond, injected)
        out = self.patch_out(F.silu(self.out_norm(h)))
        if self.input_gain is not None:
            out = out + rearrange(self.input_gain(emb), "b c -> b c 1") * x
        return out
