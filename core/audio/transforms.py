"""Waveform transforms: channel conversion, pad/trim with masks, peak and loudness normalisation.

Loudness follows ITU-R BS.1770-4 (K-weighting, 400 ms blocks with 75 % overlap, absolute gate at
-70 LUFS and relative gate at -10 LU), implemented here with numpy/scipy.
"""

from __future__ import annotations

import functools
import math
from typing import TypeVar

import numpy as np
import scipy.signal
import torch

__all__ = [
    "fit_length",
    "integrated_loudness",
    "k_weighting_coefficients",
    "loudness_normalize",
    "pad_or_trim",
    "peak_normalize",
    "to_channels",
]

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)

_SILENCE = 1e-12  # peaks below this count as digital silence


# --------------------------------------------------------------------------- channels / length


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert ``x`` of shape (..., in_channels, time) to (..., channels, time).

    Many -> mono averages the channels; mono -> many repeats the single channel. Equal counts
    return ``x`` unchanged. Any other mismatch (e.g. 6 -> 2) raises ``ValueError``.
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if x.ndim < 2:
        raise ValueError(
            f"to_channels expects a tensor of shape (..., channels, time), got shape "
            f"{tuple(x.shape)}; add a channel dimension first (x.unsqueeze(0))"
        )
    have = x.shape[-2]
    if have == channels:
        return x
    if channels == 1:
        return x.mean(dim=-2, keepdim=True)
    if have == 1:
        return x.expand(*x.shape[:-2], channels, x.shape[-1]).contiguous()
    raise ValueError(
        f"cannot convert audio with {have} channels to {channels} channels: only "
        f"many->mono (average) and mono->many (repeat) are supported"
    )


def fit_length(x: torch.Tensor, length: int | None) -> torch.Tensor:
    """Trim or zero-pad the last axis of ``x`` (..., time) to ``length`` (``None``: as is)."""
    if length is None or x.shape[-1] == length:
        return x
    if x.shape[-1] > length:
        return x[..., :length]
    return torch.nn.functional.pad(x, (0, length - x.shape[-1]))


def pad_or_trim(
    x: torch.Tensor, length: int, *, offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Take ``length`` samples of ``x`` (..., time) starting at sample ``offset``.

    Returns ``(y, mask)``: ``y`` has shape (..., length) and is ``x[..., offset:offset+length]``
    zero-padded at the end when fewer samples are available; ``mask`` is a bool tensor of shape
    (length,) on ``x.device`` that is True where ``y`` holds real samples.
    """
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if x.ndim < 1:
        raise ValueError("pad_or_trim expects a tensor of shape (..., time), got a scalar")
    real = max(0, min(length, x.shape[-1] - offset))
    y = fit_length(x[..., offset : offset + real], length)
    mask = torch.zeros(length, dtype=torch.bool, device=x.device)
    mask[:real] = True
    return y, mask


# --------------------------------------------------------------------------- peak


def peak_normalize(x: ArrayT, peak_db: float = -1.0) -> ArrayT:
    """Scale ``x`` (any shape, tensor or array) so that ``max|x|`` equals ``peak_db`` dBFS.

    The whole input is scaled by one gain (channels keep their balance). Silent input is
    returned unchanged (as a copy), never NaN.
    """
    target = 10.0 ** (peak_db / 20.0)
    if isinstance(x, torch.Tensor):
        if x.numel() == 0:
            return x.clone()
        peak = float(x.detach().abs().max().float())
    else:
        if x.size == 0:
            return x.copy()
        peak = float(np.max(np.abs(x)))
    if not math.isfinite(peak):
        raise ValueError("peak_normalize got non-finite samples (NaN or inf)")
    if peak < _SILENCE:
        return x.clone() if isinstance(x, torch.Tensor) else x.copy()
    return x * (target / peak)


# --------------------------------------------------------------------------- loudness


@functools.lru_cache(maxsize=32)
def k_weighting_coefficients(sample_rate: int) -> np.ndarray:
    """BS.1770 K-weighting as second-order sections, shape (2, 6), for ``sample_rate``.

    Stage 1 is the high-shelf "head" filter, stage 2 the RLB high-pass. The analogue prototypes
    are mapped with the bilinear transform so that at 48 kHz the coefficients equal those
    tabulated in ITU-R BS.1770.
    """
    fs = float(sample_rate)
    # Stage 1: high shelf (+~4 dB above ~1.7 kHz).
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / fs)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    b1 = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]
    a1 = [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    # Stage 2: RLB high-pass (~38 Hz).
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / fs)
    a0 = 1.0 + k / q + k * k
    b2 = [1.0, -2.0, 1.0]
    a2 = [1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    sos = np.array([b1 + a1, b2 + a2], dtype=np.float64)
    sos.flags.writeable = False  # cached: shared between callers
    return sos


def _block_energies(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean-square energy per channel of 400 ms blocks with 100 ms hop: (channels, blocks)."""
    block = round(0.4 * sample_rate)
    step = round(0.1 * sample_rate)
    n = y.shape[-1]
    if n < block:  # shorter than one gating block: measure the whole signal as one block
        return np.mean(y**2, axis=-1, keepdims=True)
    csum = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y**2, axis=-1)], axis=-1)
    starts = np.arange(0, n - block + 1, step)
    return (csum[:, starts + block] - csum[:, starts]) / block


def _loudness_2d(x: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of a float64 array (channels, time); -inf for silence."""
    if x.shape[-1] == 0:
        return -math.inf
    sos = k_weighting_coefficients(int(sample_rate)).copy()  # scipy needs a writable buffer
    y = np.asarray(scipy.signal.sosfilt(sos, x, axis=-1))
    z = _block_energies(y, sample_rate)  # (channels, blocks)
    power = z.sum(axis=0)  # all channel weights are 1.0 (mono/stereo/L-R-C layouts)
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(power)
    keep = block_lufs > -70.0
    if not keep.any():
        return -math.inf
    relative = -0.691 + 10.0 * math.log10(power[keep].mean()) - 10.0
    keep &= block_lufs > relative
    return -0.691 + 10.0 * math.log10(power[keep].mean())


def _as_numpy64(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def integrated_loudness(x: torch.Tensor | np.ndarray, sample_rate: int) -> float | np.ndarray:
    """ITU-R BS.1770-4 integrated loudness in LUFS.

    ``x`` is (time,), (channels, time) or (..., channels, time); all channels get weight 1.0.
    Returns a float for 1-D/2-D input, otherwise an array of shape (...). Silence (every block
    below the -70 LUFS absolute gate) gives ``-inf``. Signals shorter than 400 ms are measured
    as a single block.
    """
    arr = _as_numpy64(x)
    if arr.ndim == 0:
        raise ValueError("integrated_loudness expects (..., channels, time), got a scalar")
    if not np.isfinite(arr).all():
        raise ValueError("integrated_loudness got non-finite samples (NaN or inf)")
    if arr.ndim == 1:
        return _loudness_2d(arr[None], sample_rate)
    if arr.ndim == 2:
        return _loudness_2d(arr, sample_rate)
    flat = arr.reshape(-1, *arr.shape[-2:])
    out = np.array([_loudness_2d(item, sample_rate) for item in flat], dtype=np.float64)
    return out.reshape(arr.shape[:-2])


def loudness_normalize(x: ArrayT, sample_rate: int, target_lufs: float = -23.0) -> ArrayT:
    """Scale ``x`` so that its BS.1770 integrated loudness equals ``target_lufs``.

    ``x`` is (time,), (channels, time) or (..., channels, time) (each leading item normalised on
    its own), tensor or array; dtype and device are kept. Silent input is returned unchanged.
    No limiting is applied, so loud targets can push peaks above 0 dBFS.
    """
    lufs = np.asarray(integrated_loudness(x, sample_rate), dtype=np.float64)
    gain_db = np.where(np.isfinite(lufs), target_lufs - lufs, 0.0)
    gain = 10.0 ** (gain_db / 20.0)
    if x.ndim > 2:
        gain = gain[..., None, None]
    if isinstance(x, torch.Tensor):
        g = torch.as_tensor(gain, dtype=torch.float32 if x.dtype != torch.float64 else x.dtype)
        return (x * g.to(x.device)).to(x.dtype)
    return (x * gain).astype(x.dtype, copy=False)
