"""Waveform reconstruction losses (spectral and adversarial losses live beside them)."""

from __future__ import annotations

from torch import Tensor, nn

from audio_core.contracts.components import Loss
from audio_core.contracts.records import LossOutput


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``x`` ``(batch, channels, time)`` over positions where ``mask`` ``(batch, time)``."""
    if mask is None:
        return x.mean()
    m = mask[:, None, :].to(x.dtype).expand_as(x)
    return (x * m).sum() / m.sum().clamp_min(1.0)


class WaveformL1(nn.Module, Loss):
    """Mean absolute error between waveforms ``(batch, channels, time)``, padding masked."""

    name = "l1"

    def forward(self, estimate: Tensor, reference: Tensor,
                mask: Tensor | None = None) -> LossOutput:
        return LossOutput(masked_mean((estimate.float() - reference.float()).abs(), mask))


class WaveformMSE(nn.Module, Loss):
    """Mean squared error between waveforms ``(batch, channels, time)``, padding masked."""

    name = "mse"

    def forward(self, estimate: Tensor, reference: Tensor,
                mask: Tensor | None = None) -> LossOutput:
        return LossOutput(masked_mean((estimate.float() - reference.float()).pow(2), mask))
