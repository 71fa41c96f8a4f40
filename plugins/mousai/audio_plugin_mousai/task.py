"""``mousai.autoencoder``: train the diffusion autoencoder (``mousai.diffusion_autoencoder``).

Per micro-batch, with ``x0`` the waveform ``(batch, channels, time)`` (zero-padded, and
masked, to a multiple of the model's ``length_multiple``) times the model's ``scale``::

    t ~ objective.sample_time        noise ~ N(0, I)
    net_input, net_time, target, w = objective.training_example(x0, noise, t)
    loss = objective.loss(model(net_input, net_time, audio), target, w, mask)

``model(...)`` encodes the clean ``audio`` and injects the latent into the U-Net, so encoder and
denoiser learn together (the v-objective on waveform patches conditioned on the latent).
Validation decodes with ``val_decode_steps`` steps, so the trainer scores reconstructions.
Use ``train.ema_decay`` for EMA weights (then exported).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.errors import ConfigError
from audio_core.tasks.base import Task
from audio_plugin_mousai.model import DiffusionAutoencoder


def pad_to_multiple(audio: Tensor, mask: Tensor | None, multiple: int
                    ) -> tuple[Tensor, Tensor | None]:
    """``audio`` ``(batch, channels, time)`` zero-padded to a multiple of ``multiple``; the
    mask ``(batch, time)`` (True = real, ``None``: all real) marks the padding False."""
    pad = -audio.shape[-1] % multiple
    if pad == 0:
        return audio, mask
    if mask is None:
        mask = torch.ones(audio.shape[0], audio.shape[-1], dtype=torch.bool,
                          device=audio.device)
    return F.pad(audio, (0, pad)), F.pad(mask.to(audio.device), (0, pad), value=False)


class DiffusionAutoencoderTask(Task):
    """Trains a :class:`DiffusionAutoencoder` (one engine, "generator"); see the module
    docstring. Params: ``val_decode_steps`` (sampler steps of validation reconstructions)."""

    roles = ("generator",)
    model_type: ClassVar[str] = "mousai.diffusion_autoencoder"
    slots: ClassVar[dict[str, bool]] = {}

    def __init__(self, *, cfg: Any, registry: Any, val_decode_steps: int = 10) -> None:
        super().__init__(cfg=cfg, registry=registry)
        if val_decode_steps < 1:
            raise ConfigError(f"task.params.val_decode_steps must be >= 1, got "
                              f"{val_decode_steps}", "task.params.val_decode_steps")
        self.val_decode_steps = int(val_decode_steps)

    def build_model(self) -> DiffusionAutoencoder:
        model = super().build_model()
        if not isinstance(model, DiffusionAutoencoder):
            raise TypeError(f"the mousai.autoencoder task trains a DiffusionAutoencoder, but "
                            f"model.type builds {type(model).__name__}; unset model.type or "
                            f"set it to mousai.diffusion_autoencoder")
        return model

    def build_modules(self) -> dict[str, nn.Module]:
        return {"generator": self.build_model()}

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        engine = self.engines["generator"]
        objective = self.model.objective
        audio, mask = pad_to_multiple(self.input_audio(batch), batch.get("mask"),
                                      self.model.length_multiple)
        x0 = audio.float() * self.model.scale
        t = objective.sample_time(x0.shape[0], size=x0[0].numel(), device=x0.device)
        noise = torch.randn_like(x0)
        net_input, net_time, target, weight = objective.training_example(x0, noise, t)
        prediction = engine(net_input.to(engine.dtype), net_time, audio)
        loss = objective.loss(prediction.float(), target, weight, mask)
        used = self.optimize("generator", loss)
        return {"loss/total": loss.detach(), "skipped": torch.tensor(float(not used)),
                "diffusion/t": t.float().mean().detach()}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> Tensor:
        audio = self.input_audio(batch)
        with self.engines["generator"].gathered() as model:  # whole parameters under ZeRO-3
            latent = model.encode(audio)
            return model.decode(latent, audio.shape[-1], steps=self.val_decode_steps)
