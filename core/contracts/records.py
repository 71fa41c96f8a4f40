"""Records passed between components: what a quantizer and a loss return."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class QuantizedResult:
    """What every quantizer/bottleneck returns.

    Attributes:
        latent: quantized latent ``(batch, dim, frames)``, with straight-through gradients.
        codes: integer codes ``(batch, codebooks, frames)``, or ``None`` for continuous
            bottlenecks.
        loss: scalar auxiliary loss to add to the objective (commitment, KL, entropy ...),
            already weighted by the quantizer's own coefficients.
        metrics: scalars to log (perplexity, codebook usage, bits per frame ...).
        bits_per_frame: information per latent frame, for bitrate reporting.
    """

    latent: Tensor
    codes: Tensor | None = None
    loss: Tensor = field(default_factory=lambda: torch.zeros(()))
    metrics: dict[str, Tensor] = field(default_factory=dict)
    bits_per_frame: float | None = None


@dataclass
class LossOutput:
    """What every loss returns: the (unweighted) scalar ``value`` and named ``parts`` to log."""

    value: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Conditioning:
    """What a conditioner returns and a denoiser reads.

    Attributes:
        embeddings: ``(batch, tokens, dim)``: one token for a class label, one per text token.
        mask: bool ``(batch, tokens)``, True on real tokens (padding is False).
    """

    embeddings: Tensor
    mask: Tensor

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def pooled(self) -> Tensor:
        """Mean of the real tokens: ``(batch, dim)`` (zeros for an all-padding row)."""
        weight = self.mask.to(self.embeddings.dtype).unsqueeze(-1)
        return (self.embeddings * weight).sum(1) / weight.sum(1).clamp_min(1.0)

    def to(self, *args, **kwargs) -> Conditioning:
        """Embeddings moved/cast like ``Tensor.to``; the mask moves with them (stays bool)."""
        emb = self.embeddings.to(*args, **kwargs)
        return Conditioning(emb, self.mask.to(emb.device))
