"""The autoencoder task: encoder -> bottleneck/quantizer -> decoder, reconstruction losses."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from audio_core.models.autoencoder import AudioAutoencoder
from audio_core.tasks.base import Task, reconstruction_objective


class AutoencoderTask(Task):
    """Trains ``model.encoder``/``model.quantizer``/``model.decoder`` as one engine
    ("generator") on the weighted ``model.losses`` plus the quantizer's own loss."""

    roles = ("generator",)

    def build_model(self) -> AudioAutoencoder:
        m, ctx = self.cfg.model, {"channels": self.cfg.data.channels,
                                 "sample_rate": self.cfg.data.sample_rate}
        if m.encoder is None or m.decoder is None:
            raise ValueError("the autoencoder task needs model.encoder and model.decoder")
        return AudioAutoencoder(self.build(m.encoder, "encoder", "model.encoder", **ctx),
                                self.build(m.decoder, "decoder", "model.decoder", **ctx),
                                self.build(m.quantizer, "quantizer", "model.quantizer", **ctx),
                                sample_rate=self.cfg.data.sample_rate)

    def build_losses(self) -> list[tuple[nn.Module, float]]:
        if not self.cfg.model.losses:
            raise ValueError("the autoencoder task needs at least one entry in model.losses")
        ctx = {"sample_rate": self.cfg.data.sample_rate}
        return [(self.build(ref, "loss", f"model.losses[{i}]", **ctx), ref.weight)
                for i, ref in enumerate(self.cfg.model.losses)]

    def build_modules(self) -> dict[str, nn.Module]:
        self.losses = self.build_losses()
        return {"generator": self.build_model()}

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        audio, mask = self.input_audio(batch), batch.get("mask")
        out = self.engines["generator"](audio)
        loss, logs = reconstruction_objective(self.losses, out, audio, mask)
        used = self.optimize("generator", loss)
        return {"loss/total": loss.detach(), "skipped": torch.tensor(float(not used)), **logs}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> Tensor:
        return self.engines["generator"](self.input_audio(batch)).reconstruction.float()
