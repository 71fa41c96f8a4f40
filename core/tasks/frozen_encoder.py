"""Train a decoder on the latents of a frozen encoder.

The encoder (``model.encoder``) is built once, in eval mode with ``requires_grad=False``,
and kept on the task, outside every engine: it is never in an optimizer, a DeepSpeed
checkpoint, the consolidated ``model.safetensors`` or an export. The trained role
("generator") is a :class:`LatentDecoder`: ``model.quantizer`` (optional) then
``model.decoder``, mapping the frozen latent back to audio under ``model.losses``.

Loading an export rebuilds the encoder from the run config: pretrained encoders load
their own weights; randomly initialised ones are built under ``torch.manual_seed(run.seed)``
(see :func:`build_frozen`), so the same config rebuilds the same encoder on every rank
and at load time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from audio_core.config.schema import ComponentConfig
from audio_core.errors import ConfigError, format_choices
from audio_core.models.autoencoder import AutoencoderOutput
from audio_core.models.records import QuantizedResult
from audio_core.tasks.base import Task, reconstruction_objective

TARGETS = ("waveform",)


def freeze(module: nn.Module) -> nn.Module:
    """Eval mode and ``requires_grad=False`` on every parameter; returns ``module``."""
    module.eval()
    module.requires_grad_(False)
    return module


def build_frozen(task: Task, ref: ComponentConfig, kind: str, path: str,
                 **context: Any) -> nn.Module:
    """Build ``ref`` under ``torch.manual_seed(run.seed)`` (identical on every rank and on
    reload, without touching the caller's RNG) and :func:`freeze` it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(task.cfg.run.seed)
        module = task.build(ref, kind, path, **context)
    return freeze(module)


def fit_length(audio: Tensor, length: int | None) -> Tensor:
    """Trim or zero-pad the last axis of ``audio`` to ``length`` (``None``: unchanged)."""
    if length is None or audio.shape[-1] == length:
        return audio
    if audio.shape[-1] > length:
        return audio[..., :length]
    return nn.functional.pad(audio, (0, length - audio.shape[-1]))


class LatentDecoder(nn.Module):
    """Latent ``(batch, dim, frames)`` -> optional quantizer -> decoder -> waveform
    ``(batch, channels, length)``; returns an :class:`AutoencoderOutput`."""

    def __init__(self, decoder: nn.Module, quantizer: nn.Module | None = None) -> None:
        super().__init__()
        self.quantizer, self.decoder = quantizer, decoder

    def forward(self, latent: Tensor, length: int | None = None) -> AutoencoderOutput:
        quantized: QuantizedResult | None = (self.quantizer(latent) if self.quantizer is not None
                                             else None)
        code = quantized.latent if quantized is not None else latent
        return AutoencoderOutput(fit_length(self.decoder(code), length), latent, quantized)


class FrozenEncoderTask(Task):
    """Decoder (and optional quantizer) trained on a frozen ``model.encoder``'s latents.

    Params: ``target`` (``waveform``: the decoder output is compared with the input audio
    by ``model.losses``). The exported module is the :class:`LatentDecoder`.
    """

    roles = ("generator",)

    def __init__(self, *, cfg: Any, registry: Any, target: str = "waveform") -> None:
        super().__init__(cfg=cfg, registry=registry)
        if target not in TARGETS:
            raise ConfigError(f"task.params.target must be one of {format_choices(TARGETS)}, "
                              f"got '{target}'", "task.params.target")
        self.target = target
        self.encoder: nn.Module | None = None

    def context(self) -> dict[str, Any]:
        return {"channels": self.cfg.data.channels, "sample_rate": self.cfg.data.sample_rate}

    def build_modules(self) -> dict[str, nn.Module]:
        m = self.cfg.model
        if m.encoder is None or m.decoder is None:
            raise ValueError("the frozen_encoder task needs model.encoder and model.decoder")
        if not m.losses:
            raise ValueError("the frozen_encoder task needs at least one entry in model.losses")
        self.encoder = build_frozen(self, m.encoder, "encoder", "model.encoder", **self.context())
        self.losses = [(self.build(ref, "loss", f"model.losses[{i}]",
                                   sample_rate=self.cfg.data.sample_rate), ref.weight)
                       for i, ref in enumerate(m.losses)]
        decoder = LatentDecoder(self.build(m.decoder, "decoder", "model.decoder", **self.context()),
                                self.build(m.quantizer, "quantizer", "model.quantizer",
                                           **self.context()))
        return {"generator": decoder}

    def attach(self, engines: dict[str, Any]) -> None:
        super().attach(engines)
        if self.encoder is not None:
            self.encoder.to(engines["generator"].device)

    @torch.no_grad()
    def encode(self, audio: Tensor) -> Tensor:
        """Frozen latent ``(batch, dim, frames)`` of ``audio`` ``(batch, channels, time)``,
        computed in fp32 and cast to the generator engine's dtype."""
        assert self.encoder is not None, "build_modules() builds the encoder"
        engine = self.engines["generator"]
        latent = self.encoder(audio.to(device=engine.device, dtype=torch.float32))
        return latent.to(engine.dtype)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        audio, mask = self.input_audio(batch), batch.get("mask")
        out = self.engines["generator"](self.encode(audio), audio.shape[-1])
        loss, logs = reconstruction_objective(self.losses, out, audio, mask)
        used = self.optimize("generator", loss)
        return {"loss/total": loss.detach(), "skipped": torch.tensor(float(not used)), **logs}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> Tensor:
        audio = self.input_audio(batch)
        return self.engines["generator"](self.encode(audio), audio.shape[-1]) \
            .reconstruction.float()
