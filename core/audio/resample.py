"""Band-limited sample-rate conversion with soxr (runs on CPU, any tensor device in/out)."""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import soxr
import torch

__all__ = ["QUALITIES", "resample", "resampled_length"]

#: soxr quality recipes, best first ("VHQ" very high ... "QQ" quick).
QUALITIES = ("VHQ", "HQ", "MQ", "LQ", "QQ")

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def _check_rate(name: str, rate: int) -> int:
    if isinstance(rate, bool) or int(rate) != rate or rate <= 0:
        raise ValueError(f"{name} must be a positive integer sample rate, got {rate!r}")
    return int(rate)


def resampled_length(num_samples: int, orig_sr: int, target_sr: int) -> int:
    """Number of samples :func:`resample` returns for ``num_samples`` input samples."""
    orig_sr = _check_rate("orig_sr", orig_sr)
    target_sr = _check_rate("target_sr", target_sr)
    if orig_sr == target_sr:
        return int(num_samples)
    return round(num_samples * target_sr / orig_sr)


def _resample_numpy(x: np.ndarray, orig_sr: int, target_sr: int, quality: str) -> np.ndarray:
    """Resample a float32/float64 array of shape (..., time)."""
    lead, n = x.shape[:-1], x.shape[-1]
    flat = x.reshape(math.prod(lead), n)  # (channels, time)
    out_len = resampled_length(n, orig_sr, target_sr)
    if flat.shape[0] == 0 or n == 0:
        return np.zeros((*lead, out_len), dtype=x.dtype)
    # soxr wants (time, channels), C-contiguous.
    y = soxr.resample(np.ascontiguousarray(flat.T), orig_sr, target_sr, quality=quality)
    y = y.reshape(-1, flat.shape[0]).T
    if y.shape[-1] != out_len:  # defensive: keep the documented length contract
        y = (
            y[:, :out_len]
            if y.shape[-1] > out_len
            else np.pad(y, ((0, 0), (0, out_len - y.shape[-1])))
        )
    return np.ascontiguousarray(y).reshape(*lead, out_len)


def resample(x: ArrayT, orig_sr: int, target_sr: int, *, quality: str = "HQ") -> ArrayT:
    """Resample ``x`` of shape (..., time) from ``orig_sr`` to ``target_sr`` Hz.

    Returns the same kind of object as ``x`` (``torch.Tensor`` or ``np.ndarray``) with shape
    (..., new_time), ``new_time = round(time * target_sr / orig_sr)``. Conversion runs with soxr
    on the CPU; tensors come back on their original device with their original floating dtype
    (half/bfloat16 are processed in float32, float64 in float64; integer input returns float32).
    The result is not differentiable. Equal rates return ``x`` itself, unchanged.

    ``quality`` is one of :data:`QUALITIES` (case-insensitive).
    """
    orig_sr = _check_rate("orig_sr", orig_sr)
    target_sr = _check_rate("target_sr", target_sr)
    q = str(quality).upper()
    if q not in QUALITIES:
        raise ValueError(f"unknown resampling quality {quality!r}; expected one of {QUALITIES}")
    if orig_sr == target_sr:
        return x
    if isinstance(x, torch.Tensor):
        if x.ndim == 0:
            raise ValueError("resample expects a tensor of shape (..., time), got a scalar")
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        out_dtype = x.dtype if x.is_floating_point() else torch.float32
        arr = x.detach().to(device="cpu", dtype=work).numpy()
        y = _resample_numpy(arr, orig_sr, target_sr, q)
        return torch.from_numpy(y).to(device=x.device, dtype=out_dtype)
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            raise ValueError("resample expects an array of shape (..., time), got a scalar")
        out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
        work = np.float64 if x.dtype == np.float64 else np.float32
        y = _resample_numpy(x.astype(work, copy=False), orig_sr, target_sr, q)
        return y.astype(out_dtype, copy=False)
    raise TypeError(f"resample expects a torch.Tensor or np.ndarray, got {type(x).__name__}")
