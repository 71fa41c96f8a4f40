"""nn.Module front ends: ``Spectrogram`` and ``MelSpectrogram``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from audio_core.audio.dsp._common import (
    _PAD_MODES,
    LogMode,
    WindowSpec,
    _compute_dtype,
    _real_dtype,
    _stft_params,
    get_window,
    no_autocast,
)
from audio_core.audio.dsp.mel import mel_filterbank, mel_to_linear
from audio_core.audio.dsp.real_stft import onnx_tracing, stft_parts
from audio_core.audio.dsp.stft import stft


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

    window: Tensor  # buffer (win_length,)

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
        if self.power is not None and onnx_tracing():  # ONNX has no complex STFT
            real, imag = stft_parts(x, self.n_fft, self.hop_length, self.win_length,
                                    self.window.float(), self.center, self.pad_mode)
            power = real * real + imag * imag
            return power if self.power == 2.0 else power.pow(self.power / 2.0)
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
            s = (20.0 / (self.power or 1.0)) * torch.log10(s.clamp(min=self.amin))
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
        with no_autocast(x.device):
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

    mel_fb: Tensor  # buffer (n_mels, n_fft // 2 + 1)

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
        with no_autocast(x.device):
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
            power=self.power or 1.0,
            n_iter=n_iter,
        )

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, n_mels={self.n_mels}, " + super().extra_repr()
