"""STFT, inverse STFT and Griffin-Lim on real and imaginary parts: the maths of
:func:`~audio_core.audio.dsp.stft.stft`, :func:`~audio_core.audio.dsp.stft.istft` and
:func:`~audio_core.audio.dsp.griffin_lim.griffin_lim` written with convolutions against a
windowed DFT basis, so that it has an ONNX form (ONNX has no complex tensors and no
inverse STFT). Used only while a graph is traced for ONNX export
(:func:`onnx_tracing`); eager code keeps the FFT path. Lengths are integer tensor
arithmetic, so traced graphs stay length-dynamic.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor

from audio_core.audio.dsp._common import WindowSpec, _stft_params, get_window


def onnx_tracing() -> bool:
    """True while ``torch.onnx.export`` traces a graph (then DSP takes the real path)."""
    return bool(torch.onnx.is_in_onnx_export())


def _basis(n_fft: int, win_length: int, window: WindowSpec, dtype: torch.dtype,
           device: torch.device) -> tuple[Tensor, Tensor]:
    """Windowed DFT basis ``(bins, n_fft)``: ``w[n] cos(2 pi f n / N)``, ``w[n] sin(...)``;
    a window shorter than ``n_fft`` is centred (as :func:`torch.stft`)."""
    win = get_window(window, win_length, device=device, dtype=torch.float64)
    left = (n_fft - win_length) // 2
    win = F.pad(win, (left, n_fft - win_length - left))
    n = torch.arange(n_fft, dtype=torch.float64, device=device)
    f = torch.arange(n_fft // 2 + 1, dtype=torch.float64, device=device)
    angle = 2 * math.pi * f[:, None] * n[None, :] / n_fft
    return (win * angle.cos()).to(dtype), (win * angle.sin()).to(dtype)


def stft_parts(x: Tensor, n_fft: int, hop_length: int | None = None,
               win_length: int | None = None, window: WindowSpec = "hann",
               center: bool = True, pad_mode: str = "constant") -> tuple[Tensor, Tensor]:
    """Real waveform ``(..., time)`` -> ``(real, imag)``, each ``(..., n_fft // 2 + 1,
    frames)``: :func:`~audio_core.audio.dsp.stft.stft` (same padding and frames)."""
    n_fft, hop_length, win_length = _stft_params(n_fft, hop_length, win_length)
    lead = x.shape[:-1]
    flat = x.reshape(-1, 1, x.shape[-1]).float()
    if center:
        mode = {"edge": "replicate", "wrap": "circular"}.get(pad_mode, pad_mode)
        flat = F.pad(flat, (n_fft // 2, n_fft // 2), mode=mode)
    cos, sin = _basis(n_fft, win_length, window, flat.dtype, flat.device)
    spec = F.conv1d(flat, torch.cat([cos, -sin])[:, None, :], stride=hop_length)
    real, imag = spec.chunk(2, dim=1)
    return (real.reshape(*lead, *real.shape[1:]), imag.reshape(*lead, *imag.shape[1:]))


def istft_parts(real: Tensor, imag: Tensor, n_fft: int, hop_length: int | None = None,
                win_length: int | None = None, window: WindowSpec = "hann",
                center: bool = True, length: int | Tensor | None = None) -> Tensor:
    """``(real, imag)`` ``(..., n_fft // 2 + 1, frames)`` -> waveform ``(..., time)``:
    :func:`~audio_core.audio.dsp.stft.istft` (one-sided inverse DFT, windowed overlap-add
    divided by the summed squared window; ``length`` trims or zero-pads)."""
    n_fft, hop_length, win_length = _stft_params(n_fft, hop_length, win_length)
    lead, bins = real.shape[:-2], n_fft // 2 + 1
    cos, sin = _basis(n_fft, win_length, window, torch.float32, real.device)
    weight = torch.full((bins, 1), 2.0 / n_fft, device=real.device)
    weight[0] = 1.0 / n_fft
    if n_fft % 2 == 0:
        weight[-1] = 1.0 / n_fft
    kernel = torch.cat([cos * weight, -sin * weight])[:, None, :]  # (2 * bins, 1, n_fft)
    spec = torch.cat([real.reshape(-1, bins, real.shape[-1]),
                      imag.reshape(-1, bins, imag.shape[-1])], dim=1).float()
    wave = F.conv_transpose1d(spec, kernel, stride=hop_length)[:, 0]
    win = _basis(n_fft, win_length, window, torch.float32, real.device)[0][0]
    ones = torch.ones_like(spec[:1, :1])  # (1, 1, frames)
    envelope = F.conv_transpose1d(ones, (win * win)[None, None], stride=hop_length)[0, 0]
    wave = wave / torch.where(envelope > 1e-11, envelope, torch.ones_like(envelope))
    start = n_fft // 2 if center else 0
    if length is None:
        length = wave.shape[-1] - 2 * start
    # zero-padded past the frames (``length`` is a size tensor when traced)
    wave = F.pad(wave, (0, cast(int, length)))[:, start:start + length]
    return wave.reshape(*lead, wave.shape[-1])


def _hypot(re: Tensor, im: Tensor) -> Tensor:
    """``|re + i im|`` as ``abs`` of a complex tensor computes it (scaled by the larger part:
    no underflow of tiny squares, which would turn a unit phase vector into a huge one)."""
    big, small = torch.maximum(re.abs(), im.abs()), torch.minimum(re.abs(), im.abs())
    ratio = small / torch.where(big > 0, big, torch.ones_like(big))
    return big * torch.sqrt(1.0 + ratio * ratio)


def griffin_lim_parts(magnitude: Tensor, phase: Tensor, n_fft: int, hop_length: int,
                      n_iter: int, momentum: float, length: int | Tensor | None = None,
                      window: WindowSpec = "hann") -> Tensor:
    """Fast Griffin-Lim of :func:`~audio_core.audio.dsp.griffin_lim.griffin_lim` (centred,
    zero padding) from the initial ``phase`` (cycles in [0, 1), shape of ``magnitude``
    ``(..., n_fft // 2 + 1, frames)``) -> waveform ``(..., time)``."""
    mag = magnitude.float()
    frames = mag.shape[-1]
    turn = 2 * math.pi * phase.float()
    re, im = turn.cos(), turn.sin()
    prev_re, prev_im = torch.zeros_like(re), torch.zeros_like(im)
    alpha, eps = momentum / (1.0 + momentum), torch.finfo(torch.float32).tiny
    for _ in range(n_iter):
        wave = istft_parts(mag * re, mag * im, n_fft, hop_length, window=window, length=length)
        new_re, new_im = stft_parts(wave, n_fft, hop_length, window=window)
        new_re = F.pad(new_re, (0, frames))[..., :frames]  # `length` may disagree with frames
        new_im = F.pad(new_im, (0, frames))[..., :frames]
        re, im = new_re - alpha * prev_re, new_im - alpha * prev_im
        norm = _hypot(re, im) + eps
        re, im = re / norm, im / norm
        prev_re, prev_im = new_re, new_im
    return istft_parts(mag * re, mag * im, n_fft, hop_length, window=window, length=length)
