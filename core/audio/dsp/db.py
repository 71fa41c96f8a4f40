"""dB scaling (power/amplitude), clamping and spectral convergence."""

from __future__ import annotations

import torch
from torch import Tensor

from audio_core.audio.dsp._common import RefSpec, _compute_dtype


def _ref_value(s: Tensor, ref: RefSpec) -> Tensor | float:
    if isinstance(ref, str):
        if ref != "max":
            raise ValueError(f"ref must be a number, 'max' or a callable, got {ref!r}")
        return s.amax(dim=(-2, -1), keepdim=True) if s.ndim >= 2 else s.amax()
    if isinstance(ref, Tensor):
        return ref.to(s.dtype).abs()
    if callable(ref):
        return ref(s)
    return abs(float(ref))


def power_to_db(
    s: Tensor,
    ref: RefSpec = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> Tensor:
    """Power spectrogram to decibels, as ``librosa.power_to_db``.

    ``10 * log10(max(amin, s)) - 10 * log10(max(amin, ref))``; ``ref`` is a number, a tensor
    broadcastable to ``s``, ``"max"`` (per-spectrogram maximum over the last two dims) or a
    callable on ``s``. With ``top_db``,
    values are floored at (maximum - top_db), the maximum taken per spectrogram over the last
    two dims (for 2-D input exactly librosa's behaviour). Shape (..., freq, frames) is kept.
    """
    if amin <= 0:
        raise ValueError("amin must be strictly positive")
    if top_db is not None and top_db < 0:
        raise ValueError("top_db must be non-negative")
    if s.is_complex():
        s = s.abs()
    s = s.to(_compute_dtype(s))
    ref_value = _ref_value(s, ref)
    ref_t = torch.as_tensor(ref_value, dtype=s.dtype, device=s.device)
    db = 10.0 * torch.log10(s.clamp(min=amin)) - 10.0 * torch.log10(ref_t.clamp(min=amin))
    if top_db is not None:
        peak = db.amax(dim=(-2, -1), keepdim=True) if db.ndim >= 2 else db.amax()
        db = torch.maximum(db, peak - top_db)
    return db


def amplitude_to_db(
    s: Tensor,
    ref: RefSpec = 1.0,
    amin: float = 1e-5,
    top_db: float | None = 80.0,
) -> Tensor:
    """Magnitude spectrogram to decibels, as ``librosa.amplitude_to_db``.

    ``20 * log10(max(amin, |s|)) - 20 * log10(max(amin, ref))``; see :func:`power_to_db`.
    """
    if amin <= 0:
        raise ValueError("amin must be strictly positive")
    mag = s.abs().to(_compute_dtype(s.abs()))
    ref_value = _ref_value(mag, ref)
    return power_to_db(mag.square(), ref=ref_value**2, amin=amin**2, top_db=top_db)


def db_to_power(db: Tensor, ref: float = 1.0) -> Tensor:
    """Inverse of :func:`power_to_db` (without the ``top_db`` floor): ``ref * 10 ** (db / 10)``."""
    return ref * torch.pow(10.0, db.to(_compute_dtype(db)) / 10.0)


def db_to_amplitude(db: Tensor, ref: float = 1.0) -> Tensor:
    """Inverse of :func:`amplitude_to_db`: ``ref * 10 ** (db / 20)``."""
    return ref * torch.pow(10.0, db.to(_compute_dtype(db)) / 20.0)


def clamp_db(db: Tensor, min_db: float = -80.0, max_db: float = 0.0) -> Tensor:
    """Clamp a dB (or log) spectrogram to ``[min_db, max_db]``, e.g. log-mel to [-80, 0]."""
    if min_db > max_db:
        raise ValueError(f"min_db ({min_db}) must not exceed max_db ({max_db})")
    return db.clamp(min=min_db, max=max_db)
