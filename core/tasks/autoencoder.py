"""The autoencoder task: reconstruction losses over any autoencoder model."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from audio_core.tasks.base import Task, reconstruction_objective


class AutoencoderTask(Task):
    """Trains the model (default ``core.autoencoder``) as one engine ("generator") on the
    weighted ``model.losses`` of its reconstruction plus the bottleneck's own loss. The
    model's training forward maps a waveform to an
    :class:`~audio_core.models.autoencoder.AutoencoderOutput`."""

    roles = ("generator",)
    model_type = "core.autoencoder"
    slots: ClassVar[dict[str, bool]] = {"losses": True}

    def build_modules(self) -> dict[str, nn.Module]:
        self.losses = self.build_losses()
        return {"generator": self.build_model()}

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        audio, mask = self.input_audio(batch), batch.get("mask")
        out = self.engines["generator"](audio)
        loss, logs = reconstruction_objective(self.losses, out, audio, mask, step=step)
        used = self.optimize("generator", loss)
        return {"loss/total": loss.detach(), "skipped": torch.tensor(float(not used)), **logs}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> Tensor:
        return self.engines["generator"](self.input_audio(batch)).reconstruction.float()
