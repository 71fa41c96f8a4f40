"""``vae.vae``: the variational autoencoder as an inference model (what an export holds).

Waveform ``(batch, channels, time)`` -> encoder -> ``vae.gaussian`` posterior -> latent
``(batch, latent_dim, ceil(time / hop_length))`` -> decoder -> waveform. On top of
:class:`~audio_core.models.autoencoder.AudioAutoencoder` it keeps **per-channel latent
statistics** and uses them:

- In training, every forward folds the batch's per-channel mean and mean square of the
  posterior mean into running statistics (a cumulative average for the first
  ``1 / stats_momentum`` batches, then an exponential average with ``stats_momentum``;
  averaged over ranks, so every rank holds the same values). They are buffers
  (``normalizer.mean``/``std``): checkpointed, resumed and exported with the weights.
  ``model.params.latent_stats`` (a file from ``audio-core stats --features``) sets them
  instead and stops the running update.
- ``encode`` returns the posterior mean normalised with them (``normalize_latents=True``,
  the default), so ``audio-core latents`` and a stage-2 model see latents of about zero
  mean and unit variance per channel; ``decode`` undoes the normalisation. ``features``
  is the raw posterior mean (what ``audio-core stats --features`` measures).

``interpolate(a, b, alpha)`` decodes a mix of two clips' latents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.distributed import all_reduce_sum_, world_size
from audio_core.errors import ConfigError
from audio_core.models.autoencoder import AudioAutoencoder, AutoencoderOutput, audio_context
from audio_core.models.normalizer import LatentNormalizer


class VariationalAutoencoder(AudioAutoencoder):
    """See the module docstring. ``encoder`` outputs ``(batch, 2 * latent_dim, frames)``,
    ``quantizer`` is a Gaussian bottleneck with ``posterior(latent) -> (mean, std,
    logvar)``, ``decoder`` takes ``(batch, latent_dim, frames)``."""

    slots: ClassVar[dict[str, bool]] = {"encoder": True, "decoder": True, "quantizer": True}

    def __init__(self, encoder: nn.Module, decoder: nn.Module, quantizer: nn.Module, *,
                 sample_rate: int, channels: int, hop_length: int | None = None,
                 normalize_latents: bool = True, stats_momentum: float = 0.01) -> None:
        super().__init__(encoder, decoder, quantizer, sample_rate=sample_rate,
                         channels=channels)
        check_parts(encoder, decoder, quantizer, hop_length)
        if not 0 < stats_momentum <= 1:
            raise ConfigError(f"model.params.stats_momentum must be in (0, 1], got "
                              f"{stats_momentum}", "model.params.stats_momentum")
        self.normalize_latents, self.stats_momentum = bool(normalize_latents), stats_momentum
        self.track_stats = True
        self.normalizer = LatentNormalizer(int(decoder.dim))
        self.register_buffer("stats_updates", torch.zeros((), dtype=torch.int64))

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False,
                    hop_length: int | None = None, normalize_latents: bool = True,
                    stats_momentum: float = 0.01,
                    latent_stats: str | None = None) -> VariationalAutoencoder:
        from audio_core.models.build import build_slot

        ctx = audio_context(cfg)
        model = cls(build_slot(cfg, registry, "encoder", **ctx),
                    build_slot(cfg, registry, "decoder", **ctx),
                    build_slot(cfg, registry, "quantizer", **ctx),
                    sample_rate=cfg.data.sample_rate, channels=cfg.data.channels,
                    hop_length=hop_length, normalize_latents=normalize_latents,
                    stats_momentum=stats_momentum)
        if latent_stats is not None:
            model.track_stats = False
            if not loading:
                model.normalizer.load(latent_stats)
        return model

    # -- latents ------------------------------------------------------------------------
    def posterior_mean(self, encoded: Tensor) -> Tensor:
        """Encoder output ``(batch, 2 * latent_dim, frames)`` -> posterior mean."""
        return self.quantizer.posterior(encoded)[0]

    @torch.no_grad()
    def features(self, waveform: Tensor) -> Tensor:
        """Raw posterior mean ``(batch, latent_dim, frames)`` (not normalised)."""
        return self.posterior_mean(self.encode_latent(waveform))

    def encode(self, waveform: Tensor) -> Tensor:
        """Waveform -> posterior mean ``(batch, latent_dim, frames)``, normalised per channel
        with the stored statistics (``normalize_latents``)."""
        latent = self.posterior_mean(self.encode_latent(waveform))
        return self.normalizer.normalize(latent) if self.normalize_latents else latent

    def decode(self, latent: Tensor, length: int | None = None) -> Tensor:
        if self.normalize_latents:
            latent = self.normalizer.denormalize(latent)
        return super().decode(latent, length)

    @torch.no_grad()
    def reconstruct(self, waveform: Tensor) -> Tensor:
        return AudioAutoencoder.decode(self, self.features(waveform), waveform.shape[-1])

    def latent_statistics(self) -> dict[str, Tensor]:
        """The stored per-channel ``mean`` and ``std`` ``(latent_dim,)`` of the raw latent."""
        return {"mean": self.normalizer.mean.detach().float().clone(),
                "std": self.normalizer.std.detach().float().clone()}

    def save_latent_stats(self, path: Any) -> Any:
        """Write the stored statistics as an ``audio-core stats`` file (for a stage-2
        model's ``latent_stats`` when ``normalize_latents`` is off)."""
        from audio_core.models.latent_stats import save_stats

        stats = self.latent_statistics()
        stats["count"] = torch.full_like(stats["mean"], float(self.stats_updates))
        return save_stats(path, stats, source="vae.vae running statistics",
                          updates=int(self.stats_updates))

    # -- training -----------------------------------------------------------------------
    def forward(self, waveform: Tensor) -> AutoencoderOutput:
        """The training forward: the decoder gets the sampled raw latent (no
        normalisation); in training mode the running statistics are updated."""
        latent = self.encode_latent(waveform)
        quantized = self.bottleneck(self.augment(latent))
        recon = AudioAutoencoder.decode(self, quantized.latent, waveform.shape[-1])
        if self.training and self.track_stats:
            self.update_statistics(self.posterior_mean(latent))
        return AutoencoderOutput(recon, latent, quantized, self._intermediates())

    @torch.no_grad()
    def update_statistics(self, mean: Tensor) -> None:
        """Fold a batch of posterior means ``(batch, latent_dim, frames)`` into the running
        statistics. Collective when distributed: every rank calls it (once per training
        forward)."""
        x = mean.detach().float()
        moments = torch.stack([x.mean(dim=(0, 2)), x.pow(2).mean(dim=(0, 2))])
        moments = all_reduce_sum_(moments) / max(world_size(), 1)
        rate = max(self.stats_momentum, 1.0 / (float(self.stats_updates) + 1.0))
        old_mean = self.normalizer.mean.float()
        old_square = self.normalizer.std.float().pow(2) + old_mean.pow(2)
        new_mean = torch.lerp(old_mean, moments[0], rate)
        new_square = torch.lerp(old_square, moments[1], rate)
        std = (new_square - new_mean.pow(2)).clamp_min(1e-10).sqrt()
        self.normalizer.mean.copy_(new_mean)
        self.normalizer.std.copy_(std)
        self.stats_updates += 1

    # -- interpolation ------------------------------------------------------------------
    @torch.no_grad()
    def interpolate(self, a: Tensor, b: Tensor, alpha: float | Sequence[float],
                    spherical: bool = False) -> Tensor:
        """Decode ``(1 - alpha) * z_a + alpha * z_b`` of two clips' normalised latents.

        ``a``, ``b``: ``(batch, channels, time)`` or ``(channels, time)`` (the shorter is
        zero-padded). ``alpha``: a number -> ``(batch, channels, time)``; a sequence of
        ``n`` -> ``(n, batch, channels, time)``. ``spherical=True`` interpolates each
        frame's latent vector along the great circle (slerp) with its norm interpolated
        linearly, which keeps mid-points at the prior's typical norm.
        """
        squeeze = a.ndim == 2
        a, b = (x[None] if x.ndim == 2 else x for x in (a, b))
        length = max(a.shape[-1], b.shape[-1])
        a, b = (F.pad(x, (0, length - x.shape[-1])) for x in (a, b))
        za = self.encode(self._place(a))
        zb = self.encode(self._place(b))
        alphas = [float(alpha)] if isinstance(alpha, int | float) else [float(x) for x in alpha]
        mix = slerp if spherical else lerp
        out = torch.stack([self.decode(mix(za, zb, t), length) for t in alphas])
        out = out[:, 0] if squeeze else out
        return out[0] if isinstance(alpha, int | float) else out


def lerp(za: Tensor, zb: Tensor, t: float) -> Tensor:
    return za + t * (zb - za)


def slerp(za: Tensor, zb: Tensor, t: float, eps: float = 1e-7) -> Tensor:
    """Great-circle interpolation of ``(batch, dim, frames)`` latents per frame (over
    ``dim``), with the norm interpolated linearly; linear where the two are parallel."""
    na, nb = za.norm(dim=1, keepdim=True), zb.norm(dim=1, keepdim=True)
    ua, ub = za / na.clamp_min(eps), zb / nb.clamp_min(eps)
    cos = (ua * ub).sum(dim=1, keepdim=True).clamp(-1 + 1e-6, 1 - 1e-6)
    omega = torch.acos(cos)
    sin = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / sin
    parallel = sin.abs() < 1e-4
    direction = torch.where(parallel, lerp(ua, ub, t), direction)
    return direction * lerp(na, nb, t)


def check_parts(encoder: nn.Module, decoder: nn.Module, quantizer: nn.Module,
                hop_length: int | None) -> None:
    """:class:`ConfigError` when the parts do not fit: hops (and the declared
    ``hop_length``), the encoder width (``2 * latent_dim`` for mean and scale), or a
    bottleneck without a posterior."""
    if not callable(getattr(quantizer, "posterior", None)):
        raise ConfigError(f"vae.vae needs a Gaussian bottleneck with posterior() in "
                          f"model.quantizer (e.g. vae.gaussian), got {type(quantizer).__name__}",
                          "model.quantizer")
    enc_hop = int(encoder.hop_length)
    dec_hop = int(getattr(decoder, "hop_length", enc_hop))
    if enc_hop != dec_hop:
        raise ConfigError(f"encoder hop_length {enc_hop} differs from decoder hop_length "
                          f"{dec_hop}: use the same strides", "model.decoder")
    if hop_length is not None and int(hop_length) != enc_hop:
        ratios = getattr(encoder, "strides", None)
        raise ConfigError(f"model.params.hop_length is {hop_length} but the encoder's strides "
                          f"{ratios} give {enc_hop} (product {math.prod(ratios or [enc_hop])})",
                          "model.params.hop_length")
    if int(encoder.dim) != 2 * int(decoder.dim):
        raise ConfigError(f"the encoder outputs {encoder.dim} channels; the Gaussian bottleneck "
                          f"needs 2 x the decoder's latent_dim {decoder.dim} = "
                          f"{2 * int(decoder.dim)} (mean and scale)", "model.encoder")
