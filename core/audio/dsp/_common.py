"""Shared helpers of the DSP modules: dtypes, autocast, batching, windows."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Literal

import numpy as np
import scipy.signal
import torch
from torch import Tensor

WindowSpec = str | tuple | Tensor
LogMode = Literal["db", "log"] | None
RefSpec = float | str | Tensor | Callable[[Tensor], Tensor]

# librosa/numpy pad-mode names -> torch.nn.functional.pad names
_PAD_MODES = {
    "constant": "constant",
    "reflect": "reflect",
    "edge": "replicate",
    "replicate": "replicate",
    "wrap": "circular",
    "circular": "circular",
}




def _compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; every other real dtype is computed in float32."""
    if x.is_complex():
        return torch.complex128 if x.dtype == torch.complex128 else torch.complex64
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


@contextlib.contextmanager
def no_autocast(device: torch.device) -> Iterator[None]:
    """Disable autocast so spectral maths really runs in float32."""
    if torch.amp.is_autocast_available(device.type):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:
        yield


def _flatten(x: Tensor, keep: int) -> tuple[Tensor, tuple[int, ...]]:
    """Reshape (..., *last ``keep`` dims) to (batch, *last dims); return the leading shape."""
    lead = tuple(x.shape[: x.ndim - keep])
    return x.reshape(-1, *x.shape[x.ndim - keep :]), lead


@functools.lru_cache(maxsize=64)
def _window_numpy(window: str | tuple, win_length: int) -> np.ndarray:
    w = np.asarray(scipy.signal.get_window(window, win_length, fftbins=True), dtype=np.float64)
    w.flags.writeable = False
    return w


def get_window(
    window: WindowSpec,
    win_length: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Periodic analysis window of shape (win_length,), as ``librosa.filters.get_window``.

    ``window`` is a scipy window name/tuple (``"hann"``, ``("kaiser", 8.0)``, ...) or a tensor of
    length ``win_length`` (returned converted).
    """
    if isinstance(window, Tensor):
        if window.shape != (win_length,):
            raise ValueError(
                f"window tensor has shape {tuple(window.shape)}, expected ({win_length},)"
            )
        return window.to(device=device, dtype=dtype)
    return torch.tensor(_window_numpy(window, int(win_length)), device=device, dtype=dtype)


def _stft_params(
    n_fft: int, hop_length: int | None, win_length: int | None
) -> tuple[int, int, int]:
    win_length = n_fft if win_length is None else int(win_length)
    hop_length = win_length // 4 if hop_length is None else int(hop_length)
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length must be in [1, n_fft={n_fft}], got {win_length}")
    if hop_length <= 0:
        raise ValueError(f"hop_length must be positive, got {hop_length}")
    return int(n_fft), hop_length, win_length
