"""``vae.dual_channel``: a stereo reconstruction loss on mid/side and on left/right.

For stereo waveforms ``(batch, 2, time)`` the value is::

    lr_weight * inner(estimate, reference)                       left and right channels
  + mid_weight * inner(mid(estimate), mid(reference))            mid  = (left + right) / 2
  + side_weight * inner(side(estimate), side(reference))         side = (left - right) / 2

``inner`` is one of audio-core's reconstruction losses (``core.mel`` by default, or
``core.mrstft``, ``core.l1``, ...), built with ``inner_params``. The side term makes stereo
width errors visible that a per-channel loss averages away. (``core.mrstft``'s spectral
convergence divides by the reference's norm: on near-mono audio the side reference is
almost silent and that term explodes; the log-mel default has no such division.) Mono
input has neither mid nor side to separate: the value is ``inner`` alone (times
``lr_weight``).
"""

from __future__ import annotations

from typing import Any

from einops import rearrange
from torch import Tensor, nn

from audio_core.contracts.components import Loss
from audio_core.contracts.records import LossOutput


def mid_side(waveform: Tensor) -> tuple[Tensor, Tensor]:
    """Stereo ``(batch, 2, time)`` -> mid ``(L + R) / 2`` and side ``(L - R) / 2``, each
    ``(batch, 1, time)``."""
    if waveform.ndim != 3 or waveform.shape[1] != 2:
        raise ValueError(f"mid/side needs stereo (batch, 2, time), got shape "
                         f"{tuple(waveform.shape)}")
    left, right = rearrange(waveform, "b (c one) t -> c b one t", one=1)
    return (left + right) / 2, (left - right) / 2


def build_inner(name: str, params: dict[str, Any], sample_rate: int) -> nn.Module:
    """The reconstruction loss ``name`` from audio-core's registry."""
    from audio_core.plugins import get_registry

    return get_registry().build("loss", name, dict(params), path="inner",
                                context={"sample_rate": sample_rate})


class DualChannelLoss(nn.Module, Loss):
    """See the module docstring. Returns the weighted sum with parts ``lr``, ``mid`` and
    ``side`` (the unweighted inner losses)."""

    name = "dual_channel"

    def __init__(self, sample_rate: int, inner: str = "core.mel",
                 inner_params: dict[str, Any] | None = None, lr_weight: float = 1.0,
                 mid_weight: float = 1.0, side_weight: float = 1.0) -> None:
        super().__init__()
        if min(lr_weight, mid_weight, side_weight) < 0:
            raise ValueError(f"lr_weight, mid_weight and side_weight must be >= 0, got "
                             f"{lr_weight}, {mid_weight}, {side_weight}")
        self.inner = build_inner(inner, inner_params or {}, sample_rate)
        self.weights = {"lr": float(lr_weight), "mid": float(mid_weight),
                        "side": float(side_weight)}

    def forward(self, estimate: Tensor, reference: Tensor,
                mask: Tensor | None = None) -> LossOutput:
        lr = self.inner(estimate, reference, mask).value
        if estimate.shape[1] == 1:
            return LossOutput(self.weights["lr"] * lr, {"lr": lr.detach()})
        (est_mid, est_side), (ref_mid, ref_side) = mid_side(estimate), mid_side(reference)
        mid = self.inner(est_mid, ref_mid, mask).value
        side = self.inner(est_side, ref_side, mask).value
        total = self.weights["lr"] * lr + self.weights["mid"] * mid + \
            self.weights["side"] * side
        return LossOutput(total, {"lr": lr.detach(), "mid": mid.detach(),
                                  "side": side.detach()})
