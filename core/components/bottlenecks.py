"""Continuous bottlenecks: identity and a VAE (Gaussian, KL to a unit normal)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from audio_core.contracts.models import Quantizer
from audio_core.contracts.records import QuantizedResult
from audio_core.schedules import ScheduledWeights, as_schedule


class IdentityBottleneck(Quantizer):
    """Passes the latent ``(batch, dim, frames)`` through unchanged."""

    def forward(self, latent: Tensor) -> QuantizedResult:
        return QuantizedResult(latent, loss=latent.new_zeros(()))


class VAEBottleneck(ScheduledWeights, Quantizer):
    """Splits ``(batch, 2 * dim, frames)`` into mean and scale, samples in training.

    Returns latent ``(batch, dim, frames)`` (the mean in eval mode) and ``kl_weight`` times
    the KL divergence to N(0, 1), averaged over elements. ``kl_weight`` may be a schedule
    (:mod:`audio_core.schedules`, e.g. a KL warm-up); its value is logged as
    ``quantizer/kl_weight``.
    """

    def __init__(self, kl_weight: Any = 1e-4) -> None:
        super().__init__()
        self.kl_weight = as_schedule(kl_weight, "model.quantizer.params.kl_weight")

    def forward(self, latent: Tensor) -> QuantizedResult:
        if latent.shape[1] % 2:
            raise ValueError(f"VAE bottleneck needs an even channel count (mean and scale), "
                             f"got {latent.shape[1]}")
        mean, raw_scale = latent.chunk(2, dim=1)
        std = nn.functional.softplus(raw_scale) + 1e-4
        z = mean + std * torch.randn_like(mean) if self.training else mean
        kl = 0.5 * (mean.pow(2) + std.pow(2) - 1 - 2 * std.log()).mean()
        weight = self.scheduled(self.kl_weight)
        return QuantizedResult(z, loss=weight * kl, metrics={
            "kl": kl.detach(), "kl_weight": torch.tensor(weight)})
