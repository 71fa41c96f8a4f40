"""``rae.dit``: a diffusion transformer (DiT) with adaLN-Zero, and the wide "DDT head" option.

A denoiser ``net(x, t, cond)`` for ``core.latent_diffusion``: ``x`` ``(batch, dim, frames)``
normalised stage-1 latents, ``t`` ``(batch,)`` the objective's network time (rectified
flow: ``t`` in [0, 1]), ``cond`` a :class:`~audio_core.contracts.records.Conditioning` (a class
token from ``core.class_embedding``) or ``None``. Returns the objective's target (velocity
for rectified flow), shaped like ``x``.

- Body: ``patch_size`` frames per token -> linear -> + sin-cos positions -> ``depth``
  adaLN-Zero blocks driven by ``c = time embedding + pooled condition``.
  ``positions="rope"``: no added positions, rotary embeddings in every attention instead
  (relative positions: a model trained on 1 s crops generates longer clips without losing
  the signal past its training length, which absolute positions do).
- Plain DiT: adaLN output layer -> patches.
- DDT head (``head_depth > 0``, as DiT^DH in "Diffusion Transformers with Representation
  Autoencoders"): a wide, shallow transformer of ``head_width`` re-reads the noisy input and
  is modulated per token by the body's output (plus ``c``); its adaLN output layer gives the
  prediction. The head widens the network where the high-dimensional representation
  latents need it, at little depth.
"""

from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.denoisers import time_and_condition, time_mlp
from audio_core.contracts.records import Conditioning
from audio_plugin_rae.transformer import AdaLNBlock, AdaLNOutput, sincos_positions


class DiT(nn.Module):
    """See the module docstring. ``dim`` and ``cond_dim`` come from the model (the latent
    channels and the conditioner's width; ``cond_dim = 0``: unconditional).

    ``length_multiple = patch_size``: frames are padded to a multiple internally (and the
    output trimmed back), and the sampler draws whole patches.
    """

    def __init__(self, dim: int, cond_dim: int = 0, width: int = 384, depth: int = 6,
                 heads: int = 6, patch_size: int = 1, mlp_ratio: float = 4.0,
                 qk_norm: bool = True, time_features: int = 256, head_depth: int = 0,
                 head_width: int | None = None, head_heads: int | None = None,
                 positions: str = "absolute") -> None:
        super().__init__()
        if positions not in ("absolute", "rope"):
            raise ValueError(f"rae.dit positions must be 'absolute' or 'rope', got "
                             f"{positions!r}")
        head_width = head_width or 2 * width
        head_heads = head_heads or heads
        if min(dim, width, depth, heads, patch_size) < 1 or cond_dim < 0 or head_depth < 0:
            raise ValueError(f"rae.dit needs dim, width, depth, heads, patch_size >= 1 and "
                             f"cond_dim, head_depth >= 0; got dim={dim}, width={width}, "
                             f"depth={depth}, heads={heads}, patch_size={patch_size}, "
                             f"cond_dim={cond_dim}, head_depth={head_depth}")
        for name, w, h in (("width", width, heads), ("head_width", head_width, head_heads)):
            if w % h or w % 2:
                raise ValueError(f"rae.dit {name}={w} must be even and divisible by its "
                                 f"heads ({h})")
        self.dim, self.cond_dim, self.width = dim, cond_dim, width
        self.rope = rope = positions == "rope"
        self.patch_size = self.length_multiple = patch_size
        patch = dim * patch_size
        self.embed = nn.Linear(patch, width)
        self.time = time_mlp(time_features, width, max_frequency=1000.0)
        self.cond_proj = nn.Linear(cond_dim, width) if cond_dim else None
        self.blocks = nn.ModuleList(AdaLNBlock(width, heads, width, mlp_ratio, qk_norm, rope)
                                    for _ in range(depth))
        self.head_depth = head_depth
        if head_depth:
            self.head_embed = nn.Linear(patch, head_width)
            self.body_proj = nn.Linear(width, head_width)
            self.cond_to_head = nn.Linear(width, head_width)
            self.head = nn.ModuleList(AdaLNBlock(head_width, head_heads, head_width,
                                                 mlp_ratio, qk_norm, rope)
                                      for _ in range(head_depth))
            self.out = AdaLNOutput(head_width, head_width, patch)
        else:
            self.out = AdaLNOutput(width, width, patch)

    def conditioning(self, t: Tensor, cond: Conditioning | None) -> Tensor:
        """``c = MLP(time features) (+ projected pooled condition)``: ``(batch, width)``."""
        return time_and_condition(self.time, self.cond_proj, t, cond, self.embed.weight.dtype,
                                  "rae.dit")

    @property
    def extrapolates_length(self) -> bool:
        """Read by ``generate``: relative (rotary) positions carry past the training crops."""
        return self.rope

    def with_positions(self, h: Tensor) -> Tensor:
        """Tokens ``(batch, tokens, width)`` plus sin-cos positions (``positions="absolute"``;
        rotary positions are applied inside the attention instead)."""
        if self.rope:
            return h
        return h + sincos_positions(h.shape[1], h.shape[-1], device=h.device, dtype=h.dtype)

    def forward(self, x: Tensor, t: Tensor, cond: Conditioning | None = None) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.dim or t.shape != x.shape[:1]:
            raise ValueError(f"rae.dit expects x (batch, {self.dim}, frames) and t (batch,); "
                             f"got x {tuple(x.shape)}, t {tuple(t.shape)}")
        frames = x.shape[-1]
        pad = -frames % self.patch_size
        patches = rearrange(F.pad(x, (0, pad)), "b d (n p) -> b n (p d)", p=self.patch_size)
        c = self.conditioning(t, cond if self.cond_dim else None)
        h = self.with_positions(self.embed(patches))
        for block in self.blocks:
            h = block(h, c)
        if self.head_depth:
            c = self.body_proj(h) + rearrange(self.cond_to_head(c), "b w -> b 1 w")
            h = self.with_positions(self.head_embed(patches))
            for block in self.head:
                h = block(h, c)
        out = rearrange(self.out(h, c), "b n (p d) -> b d (n p)", p=self.patch_size)
        return out[..., :frames]
