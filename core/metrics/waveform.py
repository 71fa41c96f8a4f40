"""Waveform-domain metrics: SI-SDR, SNR and L1, batched, in float32.

Signals are (batch, time) or (batch, channels, time); each metric returns a Tensor[batch]
(multi-channel values are averaged over channels). An optional bool ``mask`` (batch, time)
marks valid samples (True) so padding is ignored.
"""

from __future__ import annotations

import torch
from torch import Tensor

from audio_core.audio.dsp._common import no_autocast
from audio_core.metrics._common import prepare


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    return x if mask is None else x * mask


def _zero_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return x - x.mean(dim=-1, keepdim=True)
    count = mask.sum(dim=-1, keepdim=True).clamp(min=1.0)
    return (x - (x * mask).sum(dim=-1, keepdim=True) / count) * mask


def si_sdr(
    estimate: Tensor,
    reference: Tensor,
    *,
    mask: Tensor | None = None,
    zero_mean: bool = True,
    eps: float = 1e-8,
) -> Tensor:
    """Scale-invariant signal-to-distortion ratio in dB, Tensor[batch].

    Per channel: ``alpha = <est, ref> / ||ref||^2``, ``SI-SDR = 10 log10(||alpha ref||^2 /
    ||est - alpha ref||^2)`` (``eps`` added to numerators and denominators), after removing
    each signal's mean over valid samples when ``zero_mean``; then averaged over channels.
    Invariant to rescaling ``estimate``; higher is better.
    """
    est, ref, m = prepare(estimate, reference, mask)
    with no_autocast(est.device):
        if zero_mean:
            est, ref = _zero_mean(est, m), _zero_mean(ref, m)
        est, ref = _masked(est, m), _masked(ref, m)
        alpha = ((est * ref).sum(-1, keepdim=True) + eps) / (ref.square().sum(-1, keepdim=True)
                                                              + eps)
        target = alpha * ref
        noise = est - target
        ratio = (target.square().sum(-1) + eps) / (noise.square().sum(-1) + eps)
        return (10.0 * torch.log10(ratio)).mean(dim=-1)


def snr(
    estimate: Tensor, reference: Tensor, *, mask: Tensor | None = None, eps: float = 1e-8
) -> Tensor:
    """Signal-to-noise ratio ``10 log10(||ref||^2 / ||est - ref||^2)`` in dB, Tensor[batch].

    Not scale invariant (a gain error counts as noise); averaged over channels.
    """
    est, ref, m = prepare(estimate, reference, mask)
    with no_autocast(est.device):
        noise = _masked(est - ref, m).square().sum(-1)
        signal = _masked(ref, m).square().sum(-1)
        return (10.0 * torch.log10((signal + eps) / (noise + eps))).mean(dim=-1)


def l1_distance(estimate: Tensor, reference: Tensor, *, mask: Tensor | None = None) -> Tensor:
    """Mean absolute sample error over channels and valid samples, Tensor[batch]."""
    est, ref, m = prepare(estimate, reference, mask)
    diff = (est - ref).abs()
    if m is None:
        return diff.mean(dim=(-2, -1))
    count = (m.sum(dim=-1) * diff.shape[1]).squeeze(-1).clamp(min=1.0)
    return (diff * m).sum(dim=(-2, -1)) / count
