"""Log-mel spectrograms of an original, its coded version and their difference (dB)."""

from __future__ import annotations

import numpy as np
import torch

from audio_core.audio.dsp import MelSpectrogram


def log_mel(audio: torch.Tensor, sample_rate: int) -> np.ndarray:
    """First channel of ``audio`` ``(channels, time)`` -> dB mel ``(80, frames)``."""
    mel = MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=80, log="db",
                         top_db=None)
    return mel(audio[0].float().cpu()).numpy()


def difference_panels(original: torch.Tensor, coded: torch.Tensor, sample_rate: int
                      ) -> list[tuple[str, np.ndarray, str, tuple[float, float]]]:
    """``(title, image, colormap, (vmin, vmax))`` for original, coded and coded - original
    (dB, symmetric limits)."""
    a, b = log_mel(original, sample_rate), log_mel(coded, sample_rate)
    top = float(max(a.max(), b.max()))
    diff = b - a
    span = float(max(np.percentile(np.abs(diff), 99), 1.0))
    return [("original", a, "magma", (top - 80, top)),
            ("coded", b, "magma", (top - 80, top)),
            ("difference", diff, "coolwarm", (-span, span))]
