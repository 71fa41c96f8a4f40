"""Vocoders without weights: mel spectrogram -> waveform with core DSP.

:class:`GriffinLimVocoder` (``core.griffin_lim``): the mel is inverted to a linear
magnitude by non-negative least squares (``nnls_iter`` steps), then given phases by fast
Griffin-Lim (``n_iter`` steps from phases drawn with a fixed ``seed``: deterministic). Any
vocoder-kind component with the same ``forward`` can take its place (a neural vocoder).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from audio_core.audio.dsp import db_to_power, griffin_lim, mel_to_linear

#: How the input mel power is scaled: decibels (``10 log10``) or the natural log.
MelScale = Literal["db", "log"]


class GriffinLimVocoder(nn.Module):
    """Mel power ``(batch, n_mels, frames)`` in ``scale`` (``"db"`` or ``"log"``) ->
    waveform ``(batch, 1, length)``; ``length`` trims or pads the output.

    ``n_fft``, ``hop_length`` and ``n_mels`` are the mel settings the model's decoder
    predicts; ``sample_rate`` the data rate. ``n_mels`` and ``scale`` default to the class
    attributes ``default_n_mels`` and ``default_scale`` (a family's subclass sets its own).
    """

    default_n_mels: ClassVar[int] = 80
    default_scale: ClassVar[MelScale] = "log"

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160,
                 n_mels: int | None = None, n_iter: int = 32, momentum: float = 0.99,
                 nnls_iter: int = 50, seed: int = 0, scale: MelScale | None = None) -> None:
        super().__init__()
        n_mels = self.default_n_mels if n_mels is None else n_mels
        scale = self.default_scale if scale is None else scale
        if min(sample_rate, n_fft, hop_length, n_mels) < 1 or n_iter < 0 or nnls_iter < 0:
            raise ValueError(f"griffin_lim needs positive sample_rate, n_fft, hop_length, "
                             f"n_mels and n_iter, nnls_iter >= 0; got {sample_rate}, {n_fft}, "
                             f"{hop_length}, {n_mels}, {n_iter}, {nnls_iter}")
        if scale not in ("db", "log"):
            raise ValueError(f"griffin_lim scale must be 'db' or 'log', got {scale!r}")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.n_iter, self.momentum = n_mels, n_iter, momentum
        self.nnls_iter, self.seed, self.scale = nnls_iter, seed, scale

    def forward(self, mel: Tensor, length: int | None = None,
                phase: Tensor | None = None) -> Tensor:
        """``phase``: the initial phases (cycles in [0, 1), ``(batch, n_fft // 2 + 1,
        frames)``; default: drawn with ``seed``), an input of an ONNX graph."""
        if mel.ndim != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"griffin_lim expects a {'dB' if self.scale == 'db' else 'log'}-mel "
                             f"(batch, {self.n_mels}, frames), got {tuple(mel.shape)}")
        power = db_to_power(mel.float()) if self.scale == "db" else mel.float().exp()
        magnitude = mel_to_linear(power, self.sample_rate, self.n_fft, power=2.0,
                                  n_iter=self.nnls_iter)
        generator = None if phase is not None else \
            torch.Generator(device="cpu").manual_seed(self.seed)
        wave = griffin_lim(magnitude, self.n_fft, self.hop_length, n_iter=self.n_iter,
                           momentum=self.momentum, length=length, generator=generator,
                           phase=phase)
        return wave.unsqueeze(1)
