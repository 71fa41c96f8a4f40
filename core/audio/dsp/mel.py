"""Mel filterbanks (librosa's filters) and mel -> linear inversion."""

from __future__ import annotations

import functools
import math

import librosa
import numpy as np
import torch
from torch import Tensor

from audio_core.audio.dsp._common import _compute_dtype, no_autocast


@functools.lru_cache(maxsize=32)
def _mel_numpy(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float | None,
    htk: bool,
    norm: str | float | None,
) -> np.ndarray:
    fb = librosa.filters.mel(
        sr=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,  # pyright: ignore[reportArgumentType]  (librosa: "slaney" or a p-norm)
        dtype=np.float64,
    )
    fb.flags.writeable = False
    return fb


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Mel filterbank of shape (n_mels, n_fft // 2 + 1), from ``librosa.filters.mel`` (cached).

    ``fmax`` defaults to ``sample_rate / 2``. Apply as ``fb @ power_spec``.
    """
    fb = _mel_numpy(
        int(sample_rate),
        int(n_fft),
        int(n_mels),
        float(fmin),
        None if fmax is None else float(fmax),
        bool(htk),
        norm,
    )
    return torch.tensor(fb, device=device, dtype=dtype)


@functools.lru_cache(maxsize=32)
def _mel_inverse_numpy(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float | None,
    htk: bool,
    norm: str | float | None,
) -> tuple[np.ndarray, float]:
    """Pseudo-inverse (n_freq, n_mels) of the filterbank and its squared spectral norm."""
    fb = _mel_numpy(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm)
    pinv = np.linalg.pinv(fb)
    pinv.flags.writeable = False
    lipschitz = float(np.linalg.norm(fb, ord=2) ** 2)
    return pinv, lipschitz


def mel_to_linear(
    mel: Tensor,
    sample_rate: int,
    n_fft: int,
    *,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | float | None = "slaney",
    power: float = 2.0,
    n_iter: int = 100,
) -> Tensor:
    """Approximate inverse of a mel projection, like ``librosa.feature.inverse.mel_to_stft``.

    Solves the non-negative least-squares problem ``min_{S >= 0} ||fb @ S - mel||`` per frame
    with accelerated projected gradient (FISTA, ``n_iter`` steps; ``n_iter=0`` gives the clipped
    pseudo-inverse), starting from ``clip(pinv(fb) @ mel, 0)``.

    Args:
        mel: non-negative mel spectrogram (..., n_mels, frames) of ``|STFT| ** power`` (linear
            scale, not dB). Filterbank arguments must match the ones used to make it.

    Returns:
        linear magnitude ``|STFT|`` estimate of shape (..., n_fft // 2 + 1, frames), ready for
        :func:`griffin_lim`.
    """
    if mel.ndim < 2:
        raise ValueError("mel_to_linear expects shape (..., n_mels, frames)")
    n_mels = mel.shape[-2]
    key = (
        int(sample_rate),
        int(n_fft),
        int(n_mels),
        float(fmin),
        None if fmax is None else float(fmax),
        bool(htk),
        norm,
    )
    dtype = _compute_dtype(mel)
    with no_autocast(mel.device):
        fb = torch.tensor(_mel_numpy(*key), device=mel.device, dtype=dtype)
        pinv_np, lipschitz = _mel_inverse_numpy(*key)
        pinv = torch.tensor(pinv_np, device=mel.device, dtype=dtype)
        b = mel.to(dtype).clamp(min=0)
        s = (pinv @ b).clamp(min=0)
        y, t = s, 1.0
        step = 1.0 / lipschitz
        for _ in range(n_iter):
            grad = fb.T @ (fb @ y - b)
            s_next = (y - step * grad).clamp(min=0)
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            y = s_next + ((t - 1.0) / t_next) * (s_next - s)
            s, t = s_next, t_next
    return s.pow(1.0 / power)
