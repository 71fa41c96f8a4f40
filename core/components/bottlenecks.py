"""Continuous bottlenecks: identity, and a VAE's diagonal Gaussian with a KL penalty.

:class:`GaussianBottleneck` (``core.vae``; the vae plugin registers it as ``vae.gaussian``):
the encoder output ``(batch, 2 * dim, frames)`` is split into the posterior mean and a raw
scale (``scale="softplus"``: ``std = softplus(raw) + min_std``; ``"logvar"``: ``raw`` is
``log(std^2)``). Output: the latent ``(batch, dim, frames)``, ``mean + std * eps`` in
training and the mean in eval mode (what ``encode`` returns).

Loss: ``kl_weight(step) * mean_c max(KL_c, free_bits)``, where ``KL_c`` is channel ``c``'s
closed-form ``KL(N(mean, std^2) || N(0, 1))`` averaged over batch and frames (nats per
element). A channel whose KL is under ``free_bits`` adds a constant: its KL gets no
gradient. ``kl_weight`` is a number or a schedule (:mod:`audio_core.schedules`, e.g. a
warm-up ``{start: 0, end: 1e-4, warmup_steps: 5000}``).

Metrics (logged as ``quantizer/<name>``): ``kl`` (mean KL), ``kl_penalised`` (after free
bits), ``kl_weight``, ``kl_channel/<NN>`` (each channel's KL), ``active_channels`` (fraction
with KL at least ``collapse_threshold``), ``std`` (mean posterior std). When more than
``collapse_fraction`` of the channels carry less than ``collapse_threshold`` nats in a
training step, a posterior-collapse warning is logged (at most once per ``warn_every``
steps, rank 0 only).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from audio_core import distributed
from audio_core.contracts.models import Quantizer
from audio_core.contracts.records import QuantizedResult
from audio_core.schedules import ScheduledWeights, as_schedule

log = logging.getLogger(__name__)


class IdentityBottleneck(Quantizer):
    """Passes the latent ``(batch, dim, frames)`` through unchanged."""

    def forward(self, latent: Tensor) -> QuantizedResult:
        return QuantizedResult(latent, loss=latent.new_zeros(()))


SCALES = ("softplus", "logvar")


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """Elementwise ``KL(N(mean, exp(logvar)) || N(0, 1)) = (mean^2 + exp(logvar) - 1 -
    logvar) / 2`` in nats, same shape as the inputs."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


class GaussianBottleneck(ScheduledWeights, Quantizer):
    """Diagonal Gaussian posterior with a KL penalty to ``N(0, I)`` (see the module
    docstring for the parameters and metrics)."""

    def __init__(self, kl_weight: Any = 1e-4, free_bits: float = 0.0, scale: str = "softplus",
                 min_std: float = 1e-4, collapse_threshold: float | None = None,
                 collapse_fraction: float = 0.5, warn_every: int = 1000) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}; got '{scale}'")
        if free_bits < 0 or min_std < 0:
            raise ValueError(f"free_bits and min_std must be >= 0, got {free_bits} and "
                             f"{min_std}")
        if not 0 <= collapse_fraction < 1 or warn_every < 1:
            raise ValueError(f"collapse_fraction must be in [0, 1) and warn_every >= 1, got "
                             f"{collapse_fraction} and {warn_every}")
        self.kl_weight = as_schedule(kl_weight, "model.quantizer.params.kl_weight")
        self.free_bits, self.scale, self.min_std = float(free_bits), scale, float(min_std)
        threshold = collapse_threshold if collapse_threshold is not None else \
            (free_bits if free_bits > 0 else 0.01)
        self.collapse_threshold = float(threshold)
        self.collapse_fraction, self.warn_every = float(collapse_fraction), int(warn_every)
        self._warned_at: int | None = None

    def posterior(self, latent: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Encoder output ``(batch, 2 * dim, frames)`` -> ``(mean, std, logvar)``, each
        ``(batch, dim, frames)``."""
        if latent.ndim != 3 or latent.shape[1] % 2:
            raise ValueError(f"the Gaussian bottleneck needs (batch, 2 * dim, frames) with "
                             f"mean and scale channels; got shape {tuple(latent.shape)} "
                             f"(give the encoder posterior=True)")
        mean, raw = latent.chunk(2, dim=1)
        if self.scale == "softplus":
            std = F.softplus(raw) + self.min_std
            logvar = 2.0 * std.log()
        else:
            logvar = raw.clamp(-30.0, 20.0)
            std = (0.5 * logvar).exp()
        return mean, std, logvar

    def channel_kl(self, mean: Tensor, logvar: Tensor) -> Tensor:
        """Per-channel KL ``(dim,)``: mean over batch and frames, in fp32."""
        return gaussian_kl(mean.float(), logvar.float()).mean(dim=(0, 2))

    def kl_loss(self, per_channel: Tensor) -> Tensor:
        """Free-bits KL: ``mean_c max(KL_c, free_bits)`` (unweighted)."""
        return per_channel.clamp_min(self.free_bits).mean()

    def forward(self, latent: Tensor) -> QuantizedResult:
        mean, std, logvar = self.posterior(latent)
        z = mean + std * torch.randn_like(mean) if self.training else mean
        per_channel = self.channel_kl(mean, logvar)
        penalised = self.kl_loss(per_channel)
        weight = self.scheduled(self.kl_weight)
        metrics = self.metrics(per_channel, penalised, std, weight)
        if self.training:
            self.check_collapse(per_channel)
        return QuantizedResult(z, loss=weight * penalised, metrics=metrics)

    def metrics(self, per_channel: Tensor, penalised: Tensor, std: Tensor,
                weight: float) -> dict[str, Tensor]:
        kl = per_channel.detach()
        digits = len(str(max(len(kl) - 1, 0)))
        out = {"kl": kl.mean(), "kl_penalised": penalised.detach(),
               "kl_weight": torch.tensor(float(weight), dtype=torch.float64),
               "active_channels": (kl >= self.collapse_threshold).float().mean(),
               "std": std.detach().float().mean()}
        out.update({f"kl_channel/{c:0{digits}d}": kl[c] for c in range(len(kl))})
        return out

    def check_collapse(self, per_channel: Tensor) -> bool:
        """Warn (rank 0, at most once per ``warn_every`` steps) when more than
        ``collapse_fraction`` of the channels carry less than ``collapse_threshold`` nats.
        Returns whether the latent looks collapsed."""
        kl = per_channel.detach().float().cpu()
        weak = int((kl < self.collapse_threshold).sum())
        collapsed = weak > self.collapse_fraction * len(kl)
        due = self._warned_at is None or self._step - self._warned_at >= self.warn_every
        if collapsed and due and distributed.rank() == 0:
            self._warned_at = self._step
            log.warning("posterior collapse at step %d: %d of %d latent channels carry less "
                        "than %.3g nats of KL (per channel: %s). The decoder ignores them; "
                        "lower or warm up kl_weight, or raise free_bits.", self._step, weak,
                        len(kl), self.collapse_threshold,
                        ", ".join(f"{v:.3g}" for v in kl.tolist()))
        return collapsed

    def extra_repr(self) -> str:
        return (f"kl_weight={self.kl_weight}, free_bits={self.free_bits}, "
                f"scale={self.scale}")


#: ``core.vae``: the same bottleneck (its defaults: softplus scale, no free bits).
VAEBottleneck = GaussianBottleneck
