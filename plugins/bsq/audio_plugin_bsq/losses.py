"""Masked spectrogram errors on dB log-mels."""

from __future__ import annotations

from torch import Tensor


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
