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
