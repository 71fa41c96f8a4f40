"""``core.frozen_encoder``: a frozen (pretrained or seeded random) encoder + a trained decoder.

The encoder is held outside the model's parameters and state dict
(:meth:`~audio_core.models.contracts.AudioModel.add_frozen`): it is never in an optimizer, a
checkpoint or an export. The export holds the decoder (and optional quantizer) plus the
latent statistics; :meth:`FrozenEncoderAutoencoder.from_config` rebuilds the encoder from its
reference in the config: pretrained encoders load their own weights (e.g. a
``from_pretrained`` path in their params), randomly initialised ones are built under
``torch.manual_seed(run.seed)``, identical on every rank and at load time.

Latents are normalised per channel with ``latent_stats`` (a file from ``audio-core
stats``; the identity without one) before the decoder, as the decoder is trained on them;
``noise_tau > 0`` adds ``sigma * N(0, I)``, ``sigma ~ U[0, noise_tau]`` per example, to the
normalised latent in training only (a decoder robust to a stage-2 model's imperfect latents).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from audio_core.models.autoencoder import AudioAutoencoder, audio_context
from audio_core.models.normalizer import LatentNormalizer


def build_seeded(seed: int, build: Any) -> nn.Module:
    """``build()`` under ``torch.manual_seed(seed)`` without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class FrozenEncoderAutoencoder(AudioAutoencoder):
    """Waveform -> frozen encoder (fp32, no gradients) -> normalised latent ``(batch,
    latent_dim, frames)`` -> optional quantizer -> trained decoder -> waveform."""

    slots: ClassVar[dict[str, bool]] = {"encoder": True, "decoder": True, "quantizer": False}

    def __init__(self, encoder: nn.Module, decoder: nn.Module,
                 quantizer: nn.Module | None = None, *, sample_rate: int,
                 channels: int | None = None, noise_tau: float = 0.0) -> None:
        super().__init__(None, decoder, quantizer, sample_rate=sample_rate,
                         channels=channels if channels is not None
                         else int(getattr(encoder, "channels", 1)))
        self.add_frozen("encoder", encoder)
        if noise_tau < 0:
            raise ValueError(f"noise_tau must be >= 0, got {noise_tau}")
        self.noise_tau = float(noise_tau)
        self.normalizer = LatentNormalizer(int(encoder.dim))

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False,
                    latent_stats: str | None = None,
                    noise_tau: float = 0.0) -> FrozenEncoderAutoencoder:
        from audio_core.models.build import build_slot

        ctx = audio_context(cfg)
        encoder = build_seeded(cfg.run.seed,
                               lambda: build_slot(cfg, registry, "encoder", **ctx))
        model = cls(encoder, build_slot(cfg, registry, "decoder", **ctx),
                    build_slot(cfg, registry, "quantizer", **ctx),
                    sample_rate=cfg.data.sample_rate, channels=cfg.data.channels,
                    noise_tau=noise_tau)
        if latent_stats is not None and not loading:
            model.normalizer.load(latent_stats)
        return model

    def encoder_module(self) -> nn.Module:
        return self._frozen["encoder"]

    @property
    def latent_dim(self) -> int:
        return self.normalizer.dim

    @torch.no_grad()
    def features(self, waveform: Tensor) -> Tensor:
        """Raw frozen-encoder output ``(batch, dim, frames)``, fp32 (what ``audio-core stats``
        measures)."""
        encoder = self.frozen_on("encoder", waveform.device)
        return encoder(waveform.float())

    def encode_latent(self, waveform: Tensor) -> Tensor:
        latent = self.normalizer.normalize(self.features(waveform))
        p = next(self.parameters(), None)
        return latent if p is None else latent.to(p.dtype)

    def augment(self, latent: Tensor) -> Tensor:
        """Noise augmentation in training: ``+ sigma * N(0, I)``, ``sigma ~ U[0, noise_tau]``
        per example; unchanged in eval mode."""
        if not self.training or self.noise_tau == 0:
            return latent
        sigma = torch.rand(latent.shape[0], 1, 1, device=latent.device) * self.noise_tau
        return latent + sigma.to(latent.dtype) * torch.randn_like(latent)
