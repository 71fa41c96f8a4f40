"""Spectral DSP in torch: STFT/iSTFT, mel filterbanks, dB scaling, Griffin-Lim, mel inversion.

Everything is batched over arbitrary leading dimensions, runs on the input's device and matches
librosa 0.11 conventions (periodic windows from ``scipy.signal.get_window``, ``center=True`` with
``pad_mode="constant"``, unnormalised FFT, Slaney mel filters). Half-precision input
(float16/bfloat16) is computed and returned in float32; float64 stays float64.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from typing import Literal

import librosa
import numpy as np
import scipy.signal
import torch
from torch import Tensor, nn

__all__ = [
    "MelSpectrogram",
    "Spectrogram",
    "amplitude_to_db",
    "clamp_db",
    "db_to_amplitude",
    "db_to_power",
    "get_window",
    "griffin_lim",
    "istft",
    "mel_filterbank",
    "mel_to_linear",
    "power_to_db",
    "spectral_convergence",
    "stft",
]

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


# --------------------------------------------------------------------------- helpers


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; every other real dtype is computed in float32."""
    if x.is_complex():
        return torch.complex128 if x.dtype == torch.complex128 else torch.complex64
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32


@contextlib.contextmanager
def _no_autocast(device: torch.device) -> Iterator[None]:
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
    w = scipy.signal.get_window(window, win_length, fftbins=True).astype(np.float64)
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


# --------------------------------------------------------------------------- STFT


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
    with _no_autocast(x.device):
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
    with _no_autocast(spec.device):
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


# --------------------------------------------------------------------------- mel


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
        norm=norm,
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
    with _no_autocast(mel.device):
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


# --------------------------------------------------------------------------- dB scaling


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


# --------------------------------------------------------------------------- Griffin-Lim


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
) -> Tensor:
    """Fast Griffin-Lim phase reconstruction (Perraudin et al. 2013), as ``librosa.griffinlim``.

    Args:
        magnitude: linear STFT magnitude ``|X|``, shape (..., n_fft // 2 + 1, frames).
        momentum: 0 gives classic Griffin-Lim; librosa's default 0.99 converges much faster.
        length: output length in samples (default: as implied by the frame count).
        generator: random generator for the initial phases (``init="random"``).

    Returns:
        waveform of shape (..., time), float32 (float64 for float64 input).
    """
    if momentum < 0:
        raise ValueError(f"momentum must be non-negative, got {momentum}")
    if init not in ("random", "ones"):
        raise ValueError(f"init must be 'random' or 'ones', got {init!r}")
    dtype = _compute_dtype(magnitude)
    mag = magnitude.to(dtype)
    kw = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window)
    eps = torch.finfo(dtype).tiny
    if init == "random":
        gen_device = generator.device if generator is not None else mag.device
        phase = torch.rand(mag.shape, generator=generator, device=gen_device, dtype=dtype)
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


# --------------------------------------------------------------------------- modules


class Spectrogram(nn.Module):
    """STFT magnitude/power spectrogram module: (..., time) -> (..., n_fft // 2 + 1, frames).

    Args:
        power: exponent of ``|STFT|`` (1 magnitude, 2 power); ``None`` returns the complex STFT
            (``log`` and ``clamp`` must then be None).
        log: ``None`` (linear), ``"db"`` (decibels relative to 1.0, i.e. ``(20 / power) *
            log10(max(S, amin))``) or ``"log"`` (natural ``log(max(S, log_eps))``).
        top_db: for ``log="db"``, floor at (per-spectrogram maximum - ``top_db``).
        amin: floor for ``log="db"`` in the units of S; default ``1e-10 ** (power / 2)``
            (1e-10 for power, 1e-5 for magnitude, as librosa).
        clamp: optional ``(min, max)`` applied to the final output (e.g. ``(-80.0, 0.0)``).

    The window is a non-persistent buffer, so ``.to(device)`` moves it and checkpoints stay
    free of it. Output is float32 (float64 for float64 input) even for half-precision input.
    """

    def __init__(
        self,
        n_fft: int = 2048,
        hop_length: int | None = None,
        win_length: int | None = None,
        window: WindowSpec = "hann",
        power: float | None = 2.0,
        center: bool = True,
        pad_mode: str = "constant",
        log: LogMode = None,
        top_db: float | None = None,
        amin: float | None = None,
        log_eps: float = 1e-5,
        clamp: tuple[float, float] | None = None,
    ):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = _stft_params(n_fft, hop_length, win_length)
        if log not in (None, "db", "log"):
            raise ValueError(f"log must be None, 'db' or 'log', got {log!r}")
        if power is None and (log is not None or clamp is not None):
            raise ValueError("power=None returns a complex STFT; log/clamp need a real power")
        if power is not None and power <= 0:
            raise ValueError(f"power must be positive or None, got {power}")
        if pad_mode not in _PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}; expected one of {sorted(_PAD_MODES)}")
        if clamp is not None and clamp[0] > clamp[1]:
            raise ValueError(f"clamp must be (min, max) with min <= max, got {clamp}")
        self.power = power
        self.center = center
        self.pad_mode = pad_mode
        self.log = log
        self.top_db = top_db
        self.amin = amin if amin is not None else (1e-10 ** (power / 2.0) if power else None)
        self.log_eps = log_eps
        self.clamp = None if clamp is None else (float(clamp[0]), float(clamp[1]))
        if isinstance(window, Tensor):
            window = window.detach().to("cpu", torch.float64).clone()
        self._window_spec = window
        self.register_buffer("window", get_window(window, self.win_length), persistent=False)

    def _fresh_buffer(self, name: str, device: torch.device) -> Tensor | None:
        if name == "window":
            return get_window(self._window_spec, self.win_length, device=device)
        return None

    def _apply(self, fn, recurse=True):
        # ``module.half()`` / ``.to(torch.bfloat16)`` would round the window and filterbank;
        # rebuild them in float32 so half-precision modules still compute accurately.
        result = super()._apply(fn, recurse)
        for name, buf in list(self._buffers.items()):
            if buf is not None and buf.dtype in (torch.float16, torch.bfloat16):
                fresh = self._fresh_buffer(name, buf.device)
                if fresh is not None:
                    self._buffers[name] = fresh
        return result

    def _spectrum(self, x: Tensor) -> Tensor:
        spec = stft(
            x,
            self.n_fft,
            self.hop_length,
            self.win_length,
            window=self.window.to(_real_dtype(_compute_dtype(x))),
            center=self.center,
            pad_mode=self.pad_mode,
        )
        if self.power is None:
            return spec
        mag = spec.abs()
        return mag if self.power == 1.0 else mag.pow(self.power)

    def _scale(self, s: Tensor) -> Tensor:
        if self.log == "db":
            s = (20.0 / self.power) * torch.log10(s.clamp(min=self.amin))
            if self.top_db is not None:
                peak = s.amax(dim=(-2, -1), keepdim=True)
                s = torch.maximum(s, peak - self.top_db)
        elif self.log == "log":
            s = torch.log(s.clamp(min=self.log_eps))
        if self.clamp is not None:
            s = s.clamp(min=self.clamp[0], max=self.clamp[1])
        return s

    def forward(self, x: Tensor) -> Tensor:
        """(..., time) -> (..., n_fft // 2 + 1, frames)."""
        with _no_autocast(x.device):
            s = self._spectrum(x)
            return s if self.power is None else self._scale(s)

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, hop_length={self.hop_length}, win_length={self.win_length}, "
            f"power={self.power}, center={self.center}, log={self.log!r}"
        )


class MelSpectrogram(Spectrogram):
    """Mel spectrogram module: (..., time) -> (..., n_mels, frames).

    Defaults match ``librosa.feature.melspectrogram`` (n_fft 2048, hop ``win_length // 4``,
    128 Slaney mel bands, power 2). ``log``/``top_db``/``amin``/``log_eps``/``clamp`` act on the
    mel energies as in :class:`Spectrogram`. The filterbank (``mel_fb``, shape
    (n_mels, n_fft // 2 + 1)) and window are non-persistent buffers.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 2048,
        hop_length: int | None = None,
        win_length: int | None = None,
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: float | None = None,
        power: float = 2.0,
        center: bool = True,
        pad_mode: str = "constant",
        window: WindowSpec = "hann",
        htk: bool = False,
        mel_norm: str | float | None = "slaney",
        log: LogMode = None,
        top_db: float | None = None,
        amin: float | None = None,
        log_eps: float = 1e-5,
        clamp: tuple[float, float] | None = None,
    ):
        if power is None:
            raise ValueError("MelSpectrogram needs a real power (1.0 or 2.0), not None")
        super().__init__(
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            power=power,
            center=center,
            pad_mode=pad_mode,
            log=log,
            top_db=top_db,
            amin=amin,
            log_eps=log_eps,
            clamp=clamp,
        )
        self.sample_rate = int(sample_rate)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = None if fmax is None else float(fmax)
        self.htk = bool(htk)
        self.mel_norm = mel_norm
        fb = mel_filterbank(
            self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax, self.htk, mel_norm
        )
        self.register_buffer("mel_fb", fb, persistent=False)

    def _fresh_buffer(self, name: str, device: torch.device) -> Tensor | None:
        if name == "mel_fb":
            return mel_filterbank(
                self.sample_rate,
                self.n_fft,
                self.n_mels,
                self.fmin,
                self.fmax,
                self.htk,
                self.mel_norm,
                device=device,
            )
        return super()._fresh_buffer(name, device)

    def forward(self, x: Tensor) -> Tensor:
        """(..., time) -> (..., n_mels, frames)."""
        with _no_autocast(x.device):
            s = self._spectrum(x)
            mel = torch.matmul(self.mel_fb.to(s.dtype), s)
            return self._scale(mel)

    def inverse(self, mel: Tensor, n_iter: int = 100) -> Tensor:
        """Linear-scale mel (..., n_mels, frames) -> magnitude estimate (..., freq, frames).

        Only valid for ``log=None`` output; undo dB/log scaling first (e.g. :func:`db_to_power`).
        """
        return mel_to_linear(
            mel,
            self.sample_rate,
            self.n_fft,
            fmin=self.fmin,
            fmax=self.fmax,
            htk=self.htk,
            norm=self.mel_norm,
            power=self.power,
            n_iter=n_iter,
        )

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, n_mels={self.n_mels}, " + super().extra_repr()
