"""RAE stage-1 ONNX graphs (``audio-core export --format onnx``).

A waveform decoder exports with audio-core's default graphs (encoder ``encode``, decoder
``model.decoder``). A decoder with ``output: spectrogram`` is followed by the vocoder in the
decoder graph; with a Griffin-Lim vocoder that graph also takes ``phase``, the initial
phases in cycles (uniform in [0, 1), ``(batch, n_fft // 2 + 1, mel frames)``,
:func:`phase_shape`), which ``decode`` draws with ``torch.rand`` from a CPU generator seeded
with the vocoder's ``seed``; given those, the graph gives ``decode``'s waveform.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from audio_core.contracts.onnx import OnnxGraphs
from audio_core.engine.onnx_export import (
    EncoderGraph,
    default_graphs,
    griffin_lim_phase_input,
)


class VocodedDecoderGraph(nn.Module):
    """latent (and the vocoder's initial phases) -> log-mel -> vocoder -> waveform."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, latent: Tensor, phase: Tensor | None = None) -> Tensor:
        mel = self.model.decoder(latent)
        length = latent.shape[-1] * self.model.hop_length
        return self.model.vocode(mel, length, None if phase is None else phase[..., :mel.shape[-1]])


def phase_shape(model: Any, latent: Tensor) -> tuple[int, int, int]:
    """The phases ``decode`` draws for ``latent`` ``(batch, dim, frames)``."""
    vocoder = model.frozen_on("vocoder", latent.device)
    return (latent.shape[0], vocoder.n_fft // 2 + 1, model.decoder.mel_frames(latent.shape[-1]))


def onnx_graphs(model: Any) -> OnnxGraphs:
    """Default graphs for a waveform decoder; a vocoded decoder graph otherwise."""
    if not model.spectrogram_output:
        return default_graphs(model)
    vocoder = model.frozen_on("vocoder", torch.device("cpu"))
    info: dict[str, Any] = {"latent_dim": model.latent_dim}
    extra, decoder, make_extra = griffin_lim_phase_input(
        vocoder, "latent", f"mel frames = ceil(frames / {model.decoder.tokens_per_step}) * "
        f"{model.decoder.frames_per_step}", lambda latent: phase_shape(model, latent))
    if decoder:
        info["decoder"] = decoder
    return OnnxGraphs(EncoderGraph(model, False), VocodedDecoderGraph(model), "latent",
                      {0: "batch", 2: "frames"}, extra=extra, make_extra=make_extra, info=info)
