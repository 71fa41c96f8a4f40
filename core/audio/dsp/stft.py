"""STFT and inverse STFT, batched over leading dims, matching librosa."""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from audio_core.audio.dsp._common import (
    _PAD_MODES,
    WindowSpec,
    _compute_dtype,
    _flatten,
    _real_dtype,
    _stft_params,
    get_window,
    no_autocast,
)


def stft(
    x: Tensor,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    pad_mode: str = "constant",
) -> Tensor:
    """Short-time Fourier transform matching ``librosa.stft``.

    Args:
        x: real waveform, shape (..., time).
        n_fft: FFT size. ``hop_length`` defaults to ``win_length // 4``, ``win_length`` to
            ``n_fft``; a shorter window is zero-padded on both sides to ``n_fft``.
        center: pad ``n_fft // 2`` samples on both sides with ``pad_mode`` ("constant",
            "reflect", "edge"/"replicate", "wrap"/"circular") so frame ``t`` is centred at
            ``t * hop_length``.

    Returns:
        complex tensor of shape (..., n_fft // 2 + 1, frames), complex64 (complex128 for float64
        input), with ``frames = 1 + time // hop_length`` when centred.
    """
    if x.is_complex():
        raise TypeError("stft expects a real waveform")
    if x.ndim == 0:
        raise ValueError("stft expects a tensor of shape (..., time), got a scalar")
    n_fft, hop_length, win_length = _stft_params(n_fft, hop_length, win_length)
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"unknown pad_mode {pad_mode!r}; expected one of {sorted(_PAD_MODES)}")
    dtype = _compute_dtype(x)
    flat, lead = _flatten(x.to(dtype), 1)
    time = flat.shape[-1]
    if not center and time < n_fft:
        raise ValueError(f"input of {time} samples is shorter than n_fft={n_fft} (center=False)")
    with no_autocast(x.device):
        win = get_window(window, win_length, device=x.device, dtype=dtype)
        if center:
            pad = n_fft // 2
            mode = _PAD_MODES[pad_mode]
            if mode == "reflect" and time <= pad:
                raise ValueError(
                    f"pad_mode='reflect' needs more than n_fft // 2 = {pad} samples, got {time}"
                )
            # pad explicitly: F.pad needs (batch, channel, time) for non-constant modes
            flat = nn.functional.pad(flat.unsqueeze(1), (pad, pad), mode=mode).squeeze(1)
        spec = torch.stft(
            flat,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=win,
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(
    spec: Tensor,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: WindowSpec = "hann",
    center: bool = True,
    length: int | None = None,
) -> Tensor:
    """Inverse STFT (weighted overlap-add), inverse of :func:`stft` / ``librosa.istft``.

    Args:
        spec: complex tensor of shape (..., n_fft // 2 + 1, frames).
        length: if given, the output is trimmed or zero-padded to exactly this many samples.

    Returns:
        real waveform of shape (..., time), float32 (float64 for complex128 input).
    """
    if not spec.is_complex():
        raise TypeError("istft expects a complex spectrogram (..., n_fft // 2 + 1, frames)")
    n_fft, hop_length, win_length = _stft_params(n_fft, hop_length, win_length)
    if spec.ndim < 2 or spec.shape[-2] != n_fft // 2 + 1:
        raise ValueError(
            f"istft expects shape (..., {n_fft // 2 + 1}, frames) for n_fft={n_fft}, "
            f"got {tuple(spec.shape)}"
        )
    dtype = _compute_dtype(spec)
    flat, lead = _flatten(spec.to(dtype), 2)
    with no_autocast(spec.device):
        win = get_window(window, win_length, device=spec.device, dtype=_real_dtype(dtype))
        y = torch.istft(
            flat,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=win,
            center=center,
            normalized=False,
            onesided=True,
            length=length,
            return_complex=False,
        )
    return y.reshape(*lead, y.shape[-1])


def stacked_spectrogram(audio: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """Waveform ``(batch, channels, time)`` -> the complex STFT as real channels, scaled by
    ``1 / sqrt(n_fft)``: ``(batch, 2 * channels, frames, bins)`` in float32 (computed with
    autocast off: what spectral discriminators take as an image)."""
    with no_autocast(audio.device):
        spec = stft(audio.float(), n_fft=n_fft, hop_length=hop_length)
        spec = torch.view_as_real(spec) / math.sqrt(n_fft)
    return rearrange(spec, "b c f t ri -> b (c ri) t f")
