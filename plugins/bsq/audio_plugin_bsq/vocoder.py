"""Griffin-Lim vocoder: dB log-mel -> waveform with core DSP (no parameters).

Registered as vocoder ``bsq.griffin_lim``, the default of a ``bsq.tokenizer`` model's
``model.vocoder`` slot. Any vocoder-kind component mapping a dB mel ``(batch, n_mels,
frames)`` to a waveform ``(batch, 1, time)`` can take its place, e.g. a neural vocoder.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from audio_core.audio.dsp import db_to_power, griffin_lim, mel_to_linear


class GriffinLimVocoder(nn.Module):
    """dB power mel ``(batch, n_mels, frames)`` -> waveform ``(batch, 1, time)``.

    The mel is inverted to a linear magnitude by non-negative least squares
    (``nnls_iter`` steps), then phases by fast Griffin-Lim (``n_iter`` steps, a fixed
    ``seed`` so the output is deterministic). ``length`` trims or pads the output.
    """

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160,
                 n_mels: int = 128, n_iter: int = 32, momentum: float = 0.99,
                 nnls_iter: int = 50, seed: int = 0) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.n_mels, self.n_iter, self.momentum = n_mels, n_iter, momentum
        self.nnls_iter, self.seed = nnls_iter, seed

    def forward(self, mel_db: Tensor, length: int | None = None) -> Tensor:
        if mel_db.shape[-2] != self.n_mels:
            raise ValueError(f"expected {self.n_mels} mel bins, got shape {tuple(mel_db.shape)}")
        power = db_to_power(mel_db.float())
        magnitude = mel_to_linear(power, self.sample_rate, self.n_fft, power=2.0,
                                  n_iter=self.nnls_iter)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        wave = griffin_lim(magnitude, self.n_fft, self.hop_length, n_iter=self.n_iter,
                           momentum=self.momentum, length=length, generator=generator)
        return wave.unsqueeze(1)
