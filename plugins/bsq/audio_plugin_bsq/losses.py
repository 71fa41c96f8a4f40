"""Masked spectrogram errors on dB log-mels."""

from __future__ import annotations

import torch
from torch import Tensor


def frame_mask(sample_mask: Tensor | None, frames: int, hop_length: int) -> Tensor | None:
    """Sample mask ``(batch, time)`` -> frame mask ``(batch, frames)``: frame ``t`` (centred
    at sample ``t * hop_length``) is real when that sample is."""
    if sample_mask is None:
        return None
    idx = (torch.arange(frames, device=sample_mask.device) * hop_length).clamp_max(
        sample_mask.shape[-1] - 1)
    return sample_mask[:, idx].bool()


def spectrogram_errors(estimate: Tensor, target: Tensor, mask: Tensor | None = None
                       ) -> dict[str, Tensor]:
    """``mse`` and ``mae`` (dB^2, dB) of ``(batch, bins, frames)`` over real frames
    (``mask`` ``(batch, frames)``; all frames when ``None``). fp32."""
    diff = estimate.float() - target.float()
    if mask is None:
        return {"mse": diff.square().mean(), "mae": diff.abs().mean()}
    weight = mask[:, None, :].to(diff.dtype).expand_as(diff)
    total = weight.sum().clamp_min(1.0)
    return {"mse": (diff.square() * weight).sum() / total,
            "mae": (diff.abs() * weight).sum() / total}
