"""The base of every RAE frozen encoder: waveform preprocessing and the encoder contract.

A subclass wraps a representation model: it passes ``hidden_size`` (feature width) and
``patch_size`` (input samples per output token, at ``input_rate``) to this base and
implements :meth:`FrozenEncoder.features` on fixed-length windows. The base does the rest
as the original RAE audio pipeline does, and keeps audio-core's encoder contract:

1. mix to mono, resample from the data rate to ``input_rate`` (16 kHz for the speech
   models), normalise (``peak``: to a peak of 1, as the original; ``standard``: zero mean,
   unit variance, as the wav2vec 2.0 feature extractor; ``none``);
2. pad to ``max_duration`` seconds, the fixed input length of the encoder. Longer inputs
   are cut into consecutive windows of ``max_duration`` (the original trims them; cutting
   keeps every frame, so long files reconstruct whole); ``max_duration = None`` encodes the
   whole input as one window;
3. ``features(windows)`` -> tokens, concatenated over the windows, trimmed to
   ``ceil(time / hop_length)`` frames and returned as ``(batch, hidden_size, frames)``.

``dim`` (= ``hidden_size``) and ``hop_length`` (= ``patch_size`` in data-rate samples) are
what :class:`~audio_core.models.frozen_encoder.FrozenEncoderAutoencoder` reads;
``window_frames`` (tokens per window) and ``tokens_per_step`` (tokens sharing one time step,
e.g. the frequency rows of a spectrogram patch grid) are what the RAE model hands the
decoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

NORMALIZATIONS = ("peak", "standard", "none")


class EncoderGeometryError(ValueError):
    """Window length, patch size and sample rates do not fit together."""


def normalize_waveform(x: Tensor, mode: str) -> Tensor:
    """Per-example normalisation of ``x`` ``(batch, time)`` (see :data:`NORMALIZATIONS`)."""
    if mode == "peak":
        return x / (x.abs().amax(dim=-1, keepdim=True) + 1e-8)
    if mode == "standard":
        mean = x.mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + 1e-7)
    return x


class FrozenEncoder(nn.Module):
    """Waveform ``(batch, channels, time)`` at ``sample_rate`` -> features ``(batch,
    hidden_size, ceil(time / hop_length))``; see the module docstring.

    Subclasses call ``super().__init__(hidden_size=..., patch_size=..., ...)`` and implement
    :meth:`features`. ``tokens_per_step`` > 1 says that many consecutive tokens share one time
    step (``patch_size`` is then the samples per token, ``tokens_per_step * patch_size``
    per step).
    """

    def __init__(self, *, hidden_size: int, patch_size: int, sample_rate: int = 16000,
                 channels: int = 1, max_duration: float | None = 10.0,
                 normalize: str = "peak", input_rate: int = 16000,
                 tokens_per_step: int = 1) -> None:
        super().__init__()
        name = type(self).__name__
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"{name}: normalize must be one of {NORMALIZATIONS}, got "
                             f"{normalize!r}")
        if min(hidden_size, patch_size, sample_rate, channels, input_rate,
               tokens_per_step) < 1:
            raise ValueError(f"{name}: hidden_size, patch_size, sample_rate, channels, "
                             f"input_rate and tokens_per_step must be >= 1")
        self.hidden_size, self.patch_size = int(hidden_size), int(patch_size)
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.input_rate, self.normalize = int(input_rate), normalize
        self.tokens_per_step = int(tokens_per_step)
        hop = self.patch_size * self.sample_rate / self.input_rate
        if hop != int(hop):
            raise EncoderGeometryError(
                f"{name}: a token covers {self.patch_size} samples at {self.input_rate} Hz, "
                f"which is {hop:g} samples at the data rate {self.sample_rate} Hz; use a data "
                f"sample rate where this is a whole number (e.g. {self.input_rate})")
        self.hop_length = int(hop)
        self.max_duration = None if max_duration is None else float(max_duration)
        self.window = None
        if self.max_duration is not None:
            window = self.max_duration * self.input_rate
            if abs(window - round(window)) > 1e-6 or round(window) % self.patch_size \
                    or window <= 0:
                fitting = max(1, round(window / self.patch_size)) * self.patch_size
                raise EncoderGeometryError(
                    f"{name}: max_duration={self.max_duration:g} s is {window:g} samples at "
                    f"{self.input_rate} Hz, not a positive multiple of the encoder's patch size "
                    f"({self.patch_size} samples); use a multiple of "
                    f"{self.patch_size / self.input_rate:g} s, e.g. "
                    f"{fitting / self.input_rate:g}")
            self.window = round(window)

    @property
    def dim(self) -> int:
        """Feature channels (``hidden_size``): what the latent normaliser and decoder take."""
        return self.hidden_size

    @property
    def window_frames(self) -> int | None:
        """Tokens per ``max_duration`` window (``None``: one window of any length)."""
        return None if self.window is None else self.window // self.patch_size

    def num_frames(self, samples: int) -> int:
        """Frames for ``samples`` data-rate samples: ``ceil(samples / hop_length)``."""
        return math.ceil(samples / self.hop_length)

    def features(self, windows: Tensor) -> Tensor:
        """Windows ``(n, samples)`` at ``input_rate`` (``samples`` a multiple of
        ``patch_size``) -> tokens ``(n, samples // patch_size, hidden_size)``."""
        raise NotImplementedError

    def prepare(self, waveform: Tensor) -> Tensor:
        """Steps 1-2 of the module docstring: ``(batch, channels, time)`` -> windows
        ``(batch * n, window)`` at ``input_rate``, ``n`` windows per example."""
        if waveform.ndim != 3:
            raise ValueError(f"{type(self).__name__} expects a waveform (batch, channels, time), "
                             f"got shape {tuple(waveform.shape)}")
        frames = self.num_frames(waveform.shape[-1])
        x = waveform.float().mean(dim=1)
        if self.sample_rate != self.input_rate:
            from audio_core.audio.resample import resample

            x = resample(x, self.sample_rate, self.input_rate)
        x = normalize_waveform(x, self.normalize)
        needed = frames * self.patch_size
        window = self.window or needed
        n = max(1, math.ceil(needed / window))
        x = F.pad(x, (0, n * window - x.shape[-1])) if x.shape[-1] < n * window \
            else x[..., :n * window]
        return rearrange(x, "b (n w) -> (b n) w", n=n)

    def forward(self, waveform: Tensor) -> Tensor:
        batch, frames = waveform.shape[0], self.num_frames(waveform.shape[-1])
        windows = self.prepare(waveform)
        tokens = self.features(windows)
        expected = (windows.shape[0], windows.shape[1] // self.patch_size, self.hidden_size)
        if tuple(tokens.shape) != expected:
            raise RuntimeError(f"{type(self).__name__}.features gave {tuple(tokens.shape)} for "
                               f"windows {tuple(windows.shape)}; expected {expected} "
                               f"(window // patch_size tokens of hidden_size)")
        out = rearrange(tokens, "(b n) t h -> b h (n t)", b=batch)
        return out[..., :frames]

    def extra_repr(self) -> str:
        return (f"hidden_size={self.hidden_size}, patch_size={self.patch_size}, "
                f"hop_length={self.hop_length}, max_duration={self.max_duration}, "
                f"normalize={self.normalize!r}")
