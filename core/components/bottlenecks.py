"""Continuous bottlenecks: identity and a VAE (Gaussian, KL to a unit normal)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from audio_core.models.contracts import Quantizer
from audio_core.models.records import QuantizedResult


class IdentityBottleneck(Quantizer):
    """Passes the latent ``(batch, dim, frames)`` through unchanged."""

    def forward(self, latent: Tensor) -> QuantizedResult:
        return QuantizedResult(latent, loss=latent.new_zeros(()))


class VAEBottleneck(Quantizer):
    """Splits ``(batch, 2 * dim, frames)`` into mean and scale, samples in training.

    Returns latent ``(batch, dim, frames)`` (the mean in eval mode) and ``kl_weight`` times
    the KL divergence to N(0, 1), averaged over elements.
    """

    def __init__(self, kl_weight: float = 1e-4) -> None:
        super().__init__()
        self.kl_weight = kl_weight

    def forward(self, latent: Tensor) -> QuantizedResult:
        if latent.shape[1] % 2:
            raise ValueError(f"VAE bottleneck needs an even channel count (mean and scale), "
                             f"got {latent.shape[1]}")
        mean, raw_scale = latent.chunk(2, dim=1)
        std = nn.functional.softplus(raw_scale) + 1e-4
        z = mean + std * torch.randn_like(mean) if self.training else mean
        kl = 0.5 * (mean.pow(2) + std.pow(2) - 1 - 2 * std.log()).mean()
        return QuantizedResult(z, loss=self.kl_weight * kl, metrics={"kl": kl.detach()})
