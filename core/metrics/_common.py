"""Shared input handling for the metrics: shapes, float32 promotion, masks, autocast."""

from __future__ import annotations

import torch
from torch import Tensor


def as_float(x: Tensor) -> Tensor:
    """float64 stays float64; every other dtype (bf16, fp16, ints) becomes float32."""
    return x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)


def prepare(
    estimate: Tensor, reference: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Check and promote a pair to (batch, channels, time) float; mask -> (batch, 1, time) float.

    Accepts (batch, time) or (batch, channels, time) for both signals (same shape) and a bool
    (or 0/1) mask of shape (batch, time) where True marks valid samples.
    """
    if estimate.shape != reference.shape:
        raise ValueError(
            f"estimate and reference shapes differ: {tuple(estimate.shape)} vs "
            f"{tuple(reference.shape)}; crop or pad them to the same length first"
        )
    if estimate.ndim not in (2, 3):
        raise ValueError(
            f"expected (batch, time) or (batch, channels, time), got shape {tuple(estimate.shape)}"
        )
    est, ref = as_float(estimate), as_float(reference)
    if est.ndim == 2:
        est, ref = est.unsqueeze(1), ref.unsqueeze(1)
    if mask is None:
        return est, ref, None
    batch, _, time = est.shape
    if tuple(mask.shape) != (batch, time):
        raise ValueError(f"mask must have shape (batch, time) = {(batch, time)}, "
                         f"got {tuple(mask.shape)}")
    return est, ref, mask.to(device=est.device, dtype=est.dtype).unsqueeze(1)
