"""``rae.griffin_lim``: log-mel -> waveform without weights (the default RAE vocoder).

The vocoder of a ``rae.vit`` decoder with ``output: spectrogram``. Any vocoder-kind
component with ``forward(log_mel (batch, n_mels, frames), length) -> (batch, 1, length)``
can take its place in ``model.vocoder`` (e.g. a neural vocoder from another plugin).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from audio_core.audio.dsp import griffin_lim, mel_to_linear


class GriffinLimVocoder(nn.Module):
    """Natural-log mel power ``(batch, n_mels, frames)`` -> waveform ``(batch, 1, length)``:
    ``exp`` -> non-negative least-squares mel inversion (``nnls_iter`` steps) -> fast
    Griffin-Lim (``n_iter`` steps from phases drawn with a fixed ``seed``: deterministic).

    ``n_fft``, ``hop_length`` and ``n_mels`` are the decoder's mel settings (the RAE model
    passes them); ``sample_rate`` the data rate.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160,
                 n_mels: int = 80, n_iter: int = 32, momentum: float = 0.99,
                 nnls_iter: int = 50, seed: int = 0) -> None:
        super().__init__()
        if min(sample_rate, n_fft, hop_length, n_mels) < 1 or n_iter < 0 or nnls_iter < 0:
            raise ValueError(f"rae.griffin_lim needs positive sample_rate, n_fft, hop_length, "
                             f"n_mels and n_iter, nnls_iter >= 0; got {sample_rate}, {n_fft}, "
                             f"{hop_length}, {n_mels}, {n_iter}, {nnls_iter}")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.n_iter, self.momentum = n_mels, n_iter, momentum
        self.nnls_iter, self.seed = nnls_iter, seed

    def forward(self, log_mel: Tensor, length: int | None = None) -> Tensor:
        if log_mel.ndim != 3 or log_mel.shape[1] != self.n_mels:
            raise ValueError(f"rae.griffin_lim expects a log-mel (batch, {self.n_mels}, "
                             f"frames), got {tuple(log_mel.shape)}")
        power = log_mel.float().exp()
        magnitude = mel_to_linear(power, self.sample_rate, self.n_fft, power=2.0,
                                  n_iter=self.nnls_iter)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        wave = griffin_lim(magnitude, self.n_fft, self.hop_length, n_iter=self.n_iter,
                           momentum=self.momentum, length=length, generator=generator)
        return wave.unsqueeze(1)
