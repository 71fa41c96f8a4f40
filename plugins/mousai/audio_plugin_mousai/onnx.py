"""The diffusion autoencoder's ONNX graphs (``audio-core export --format onnx``).

    encoder.onnx   waveform (batch, channels, time) -> latent (batch, latent_dim, frames)
    decoder.onnx   latent (batch, latent_dim, frames), noise (batch, channels,
                   ceil(frames / m) * m * hop_length) standard normal -> waveform
                   (batch, channels, frames * hop_length); the model's ``decode_steps``
                   sampler steps unrolled (``m = length_multiple / hop_length``)

With the noise ``decode(latent, seed=s)`` draws (``torch.randn`` from a CPU generator seeded
``s``), the decoder graph gives ``decode``'s waveform. The sampler must not draw noise of
its own during the steps (DDIM with ``eta > 0`` does): such a model is refused.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from audio_core.contracts.onnx import OnnxGraphs
from audio_core.errors import AudioCoreError


class EncoderGraph(nn.Module):
    """waveform -> latent (``model.encode``)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveform: Tensor) -> Tensor:
        return self.model.encode(waveform)


class SamplingDecoderGraph(nn.Module):
    """``(latent, noise)`` -> waveform: ``steps`` sampler steps (a Python loop: tracing
    unrolls it)."""

    def __init__(self, model: Any, steps: int) -> None:
        super().__init__()
        self.model, self.steps = model, int(steps)

    def forward(self, latent: Tensor, noise: Tensor) -> Tensor:
        audio = self.model.sample(latent, noise, self.steps)
        return audio[..., :latent.shape[-1] * self.model.hop_length]


def _check_deterministic(model: Any) -> None:
    """Refuse a sampler that draws noise during its steps: the graph has no input for it."""
    latent = torch.zeros(1, model.latent_dim, model.length_multiple // model.hop_length)
    noise = torch.randn(model.noise_shape(latent), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        runs = [model.sample(latent, noise, 2, generator=torch.Generator().manual_seed(seed))
                for seed in (0, 1)]
    if not torch.equal(*runs):
        raise AudioCoreError(f"ONNX export of {type(model).__name__}: its sampler "
                             f"{model.sampler!r} draws noise during the steps, which the "
                             f"decoder graph has no input for; use a deterministic sampler "
                             f"(model.sampler: core.ddim with eta 0, core.euler, core.heun, "
                             f"core.dpmpp_2m)")


def onnx_graphs(model: Any) -> OnnxGraphs:
    """The encoder graph and the unrolled ``(latent, noise)`` decoder graph of ``model``."""
    _check_deterministic(model)

    def make_extra(latent: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
        return {"noise": torch.randn(model.noise_shape(latent), generator=generator)}

    multiple = model.length_multiple // model.hop_length
    return OnnxGraphs(
        EncoderGraph(model), SamplingDecoderGraph(model, model.decode_steps), "latent",
        {0: "batch", 2: "frames"}, extra={"noise": {0: "batch", 2: "noise_length"}},
        make_extra=make_extra,
        info={"latent_dim": model.latent_dim,
              "decoder": {"inputs": ["latent", "noise"], "steps": model.decode_steps,
                          "noise": f"standard normal (batch, channels, ceil(frames / "
                                   f"{multiple}) * {multiple * model.hop_length})",
                          "sampler": repr(model.sampler)}})
