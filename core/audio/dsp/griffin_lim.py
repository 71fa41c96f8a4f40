"""Fast Griffin-Lim phase reconstruction (librosa's algorithm, in torch)."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from audio_core.audio.dsp._common import WindowSpec, _compute_dtype, _stft_params
from audio_core.audio.dsp.real_stft import griffin_lim_parts, onnx_tracing
from audio_core.audio.dsp.stft import istft, stft


def spectral_convergence(magnitude: Tensor, estimate: Tensor) -> Tensor:
    """``||magnitude - estimate||_F / ||magnitude||_F`` over the last two dims: shape (...)."""
    num = torch.linalg.vector_norm(magnitude - estimate, dim=(-2, -1))
    den = torch.linalg.vector_norm(magnitude, dim=(-2, -1))
    return num / den.clamp(min=torch.finfo(den.dtype).tiny)


def griffin_lim(
    magnitude: Tensor,
    n_fft: int,
    hop_length: int | None = None,
    n_iter: int = 32,
    momentum: float = 0.99,
    length: int | None = None,
    generator: torch.Generator | None = None,
    *,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
    init: Literal["random", "ones"] = "random",
    phase: Tensor | None = None,
) -> Tensor:
    """Fast Griffin-Lim phase reconstruction (Perraudin et al. 2013), as ``librosa.griffinlim``.

    Args:
        magnitude: linear STFT magnitude ``|X|``, shape (..., n_fft // 2 + 1, frames).
        momentum: 0 gives classic Griffin-Lim; librosa's default 0.99 converges much faster.
        length: output length in samples (default: as implied by the frame count).
        generator: random generator for the initial phases (``init="random"``).
        phase: the initial phases in cycles, uniform in [0, 1) with ``magnitude``'s shape
            (default: drawn with ``generator``); while an ONNX graph is traced they must be
            given (a graph input) and the real-valued path of
            :mod:`~audio_core.audio.dsp.real_stft` runs (same maths, ONNX ops).

    Returns:
        waveform of shape (..., time), float32 (float64 for float64 input).
    """
    if momentum < 0:
        raise ValueError(f"momentum must be non-negative, got {momentum}")
    if init not in ("random", "ones"):
        raise ValueError(f"init must be 'random' or 'ones', got {init!r}")
    if onnx_tracing() and init == "random":
        if phase is None or not center or pad_mode != "constant" or win_length is not None:
            raise ValueError("griffin_lim in an ONNX graph needs the initial phase as an input "
                             "and centred, zero-padded, full-window frames")
        return griffin_lim_parts(magnitude, phase, n_fft, _stft_params(n_fft, hop_length,
                                 None)[1], n_iter, momentum, length, window)
    dtype = _compute_dtype(magnitude)
    mag = magnitude.to(dtype)
    kw: dict[str, Any] = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                              window=window)
    eps = torch.finfo(dtype).tiny
    if init == "random":
        gen_device = generator.device if generator is not None else mag.device
        if phase is None:
            phase = torch.rand(mag.shape, generator=generator, device=gen_device, dtype=dtype)
        elif phase.shape != mag.shape:
            raise ValueError(f"griffin_lim phase has shape {tuple(phase.shape)}, expected the "
                             f"magnitude's {tuple(mag.shape)}")
        phase = phase.to(dtype)
        angles = torch.polar(torch.ones_like(phase), 2.0 * math.pi * phase).to(mag.device)
    else:
        angles = torch.ones_like(mag, dtype=dtype.to_complex())
    rebuilt = torch.zeros_like(angles)
    alpha = momentum / (1.0 + momentum)
    for _ in range(n_iter):
        previous = rebuilt
        wave = istft(mag * angles, center=center, length=length, **kw)
        rebuilt = stft(wave, center=center, pad_mode=pad_mode, **kw)
        if rebuilt.shape[-1] != mag.shape[-1]:  # `length` disagrees with the frame count
            rebuilt = nn.functional.pad(rebuilt, (0, mag.shape[-1] - rebuilt.shape[-1]))
        angles = rebuilt - alpha * previous
        angles = angles / (angles.abs() + eps)
    return istft(mag * angles, center=center, length=length, **kw)
