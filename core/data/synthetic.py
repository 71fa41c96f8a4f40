"""Procedural audio: the embedded default dataset for demos and tests (no files needed).

Each item mixes one main event (its kind is the label, cycling through ``kinds`` so classes
are balanced) with up to ``max_events - 1`` quieter background events. Kinds:

- ``tone``: a note or triad of harmonic partials with an ADSR envelope and vibrato
- ``chirp``: an exponential sine sweep with a few harmonics
- ``noise``: a coloured (white to brown), optionally band-passed noise burst
- ``hit``: percussive hits on a beat, a pitch-dropping sine body plus a noise snap
- ``vowel``: a glottal harmonic series shaped by formants gliding between two vowels

Everything is drawn from ``numpy.random.default_rng([seed, index])``: an item depends only
on (seed, index), never on rank, epoch or worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from audio_core.data.base import DatasetError, EpochRankMixin

__all__ = ["KINDS", "SyntheticDataset"]

#: Event kinds, in label order.
KINDS = ("tone", "chirp", "noise", "hit", "vowel")

# (F1, F2, F3) in Hz for a, e, i, o, u.
_FORMANTS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                      [570, 840, 2410], [300, 870, 2240]], dtype=np.float64)
_TRIADS = ((0, 4, 7), (0, 3, 7), (0, 5, 9), (0, 7, 12))


def _envelope(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """ADSR envelope of ``n`` samples (attack 5-80 ms, sustain 0.4-0.9, release 10-30%)."""
    a = max(1, min(n // 4, int(rng.uniform(0.005, 0.08) * sr)))
    d = max(1, min(n // 4, int(rng.uniform(0.02, 0.2) * sr)))
    r = max(1, int(n * rng.uniform(0.1, 0.3)))
    s = rng.uniform(0.4, 0.9)
    hold = max(0, n - a - d - r)
    env = np.concatenate([np.linspace(0, 1, a, endpoint=False), np.linspace(1, s, d,
                          endpoint=False), np.full(hold, s), np.linspace(s, 0, r)])
    return env[:n] if len(env) >= n else np.pad(env, (0, n - len(env)))


def _partials(f0: np.ndarray, amps: Sequence[float | np.ndarray], sr: int) -> np.ndarray:
    """Sum of harmonics k*f0(t) with amplitude ``amps[k-1]``, dropped above Nyquist.

    Uses the recurrence sin(k p) = 2 cos(p) sin((k-1) p) - sin((k-2) p): one sin/cos in all.
    """
    phase = 2 * np.pi * np.cumsum(f0) / sr
    two_cos, prev, cur = 2 * np.cos(phase), np.zeros_like(phase), np.sin(phase)
    out = np.zeros_like(f0)
    top = f0.max()
    for k, amp in enumerate(amps, start=1):
        if k * top >= 0.45 * sr:
            break
        out += amp * cur
        prev, cur = cur, two_cos * cur - prev
    return out


def _tone(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    root = rng.integers(36, 80)
    notes = [root + i for i in _TRIADS[rng.integers(len(_TRIADS))][: rng.integers(1, 4)]]
    rolloff, odd = rng.uniform(0.7, 2.0), rng.uniform(0.0, 0.8)
    amps = [k ** -rolloff * (1 - odd if k % 2 == 0 else 1) for k in range(1, 24)]
    vib = 1 + rng.uniform(0, 0.006) * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    out = sum(_partials(440 * 2 ** ((m - 69) / 12) * vib, amps, sr) for m in notes)
    return out * _envelope(rng, n, sr)


def _chirp(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    lo, hi = 60.0, min(8000.0, 0.4 * sr)
    f_start, f_end = np.exp(rng.uniform(np.log(lo), np.log(hi), size=2))
    f0 = f_start * (f_end / f_start) ** np.linspace(0, 1, n)
    amps = [1.0, *rng.uniform(0, 0.5, size=rng.integers(0, 3))]
    fade = np.minimum(1, np.minimum(np.arange(n), np.arange(n)[::-1]) / max(1, 0.01 * sr))
    return _partials(f0, amps, sr) * fade


def _noise(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    shape = np.maximum(freqs, 20.0) ** (-rng.uniform(0, 2) / 2)  # white .. brown
    if rng.random() < 0.5:  # band-pass around a random centre
        centre, width = np.exp(rng.uniform(np.log(200), np.log(0.4 * sr))), rng.uniform(0.3, 1.5)
        shape *= np.exp(-0.5 * (np.log2(np.maximum(freqs, 1.0) / centre) / width) ** 2)
    x = np.fft.irfft(spec * shape, n)
    t = np.arange(n) / sr
    env = 1 - np.exp(-t / rng.uniform(0.002, 0.05))
    env *= np.exp(-t / rng.uniform(0.05, 0.6)) if rng.random() < 0.6 else _envelope(rng, n, sr)
    return x * env


def _hit(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """One percussive hit, repeated on a steady beat (1-4 times) with varying velocity."""
    m = min(n, sr // 2)
    t = np.arange(m) / sr
    f_hi, f_lo = rng.uniform(120, 400), rng.uniform(40, 120)
    f0 = f_lo + (f_hi - f_lo) * np.exp(-t / rng.uniform(0.01, 0.06))
    body = np.sin(2 * np.pi * np.cumsum(f0) / sr) * np.exp(-t / rng.uniform(0.03, 0.25))
    snap = rng.standard_normal(m)
    if rng.random() < 0.5:  # brighter, hat-like
        snap = np.diff(snap, prepend=0.0)
    snap *= np.exp(-t / rng.uniform(0.005, 0.1))
    mix = rng.uniform(0, 1)
    hit = (1 - mix) * body + mix * snap / 3
    out = np.zeros(n)
    period = max(1, int(60 / rng.uniform(70, 160) * sr * rng.choice([0.5, 1.0])))
    for j, start in enumerate(range(0, n, period)[: rng.integers(1, 5)]):
        seg = hit[: n - start]
        out[start:start + len(seg)] += (1.0 if j == 0 else rng.uniform(0.4, 1.0)) * seg
    return out


def _vowel(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.linspace(0, 1, n)
    a, b = _FORMANTS[rng.integers(5)], _FORMANTS[rng.integers(5)]
    f0 = rng.uniform(90, 260) * (1 + rng.uniform(-0.15, 0.15) * t)  # intonation glide
    f0 *= 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 6) * t * n / sr)
    # Formant gains vary slowly: evaluate them every 64 samples and interpolate.
    coarse = np.arange(0, n + 64, 64)
    tc, f0c = np.minimum(coarse, n - 1) / max(1, n - 1), np.interp(coarse, np.arange(n), f0)
    formants = a[:, None] + (b - a)[:, None] * tc  # (3, coarse)
    bandwidth = np.array([60.0, 100.0, 140.0])[:, None]
    block, frac = np.divmod(np.arange(n), 64)
    frac = frac / 64
    amps = []
    for k in range(1, int(min(5000, 0.45 * sr) / f0.max()) + 1):
        gain = (1 / (1 + ((k * f0c - formants) / bandwidth) ** 2) / [[1], [2], [3]]).sum(0)
        gain /= k**0.5
        amps.append(gain[block] + (gain[block + 1] - gain[block]) * frac)
    return _partials(f0, amps, sr) * _envelope(rng, n, sr)


_RENDER: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "tone": _tone, "chirp": _chirp, "noise": _noise, "hit": _hit, "vowel": _vowel,
}


class SyntheticDataset(EpochRankMixin, Dataset):
    """``num_items`` procedural clips of (channels, segment_seconds * sample_rate) samples.

    Items follow the dataset contract (``audio``, ``mask``, ``label``, ``path``, ``offset``,
    ``length``): ``mask`` is all True, ``label`` is the index of the main event's kind in
    ``classes``, ``path`` is ``""``. Peaks lie in [0.25, 0.95]; no NaN. Multi-channel items
    pan every event differently across channels.
    """

    def __init__(self, *, sample_rate: int = 16000, channels: int | None = 1,
                 segment_seconds: float | None = 1.0, seed: int = 0, num_items: int = 1024,
                 kinds: Sequence[str] = KINDS, max_events: int = 4) -> None:
        unknown = [k for k in kinds if k not in _RENDER]
        if unknown or not kinds:
            raise DatasetError(f"unknown synthetic kinds {unknown}; choose from {list(KINDS)}")
        if num_items <= 0 or max_events <= 0 or sample_rate <= 0:
            raise DatasetError("num_items, max_events and sample_rate must be positive")
        self.sample_rate, self.channels = int(sample_rate), int(channels or 1)
        self.segment_seconds = 1.0 if segment_seconds is None else float(segment_seconds)
        self.segment_samples = max(1, round(self.segment_seconds * self.sample_rate))
        self.seed, self.num_items, self.max_events = int(seed), int(num_items), int(max_events)
        self.classes = tuple(kinds)
        self.bad_files: list = []  # same attribute as file datasets; generated audio is never bad

    def __len__(self) -> int:
        return self.num_items

    @property
    def units_per_item(self) -> tuple[str, float]:
        """Throughput unit: seconds of audio per item."""
        return "audio_s", self.segment_samples / self.sample_rate

    def __getitem__(self, index: int) -> dict:
        if not -self.num_items <= index < self.num_items:
            raise IndexError(f"index {index} out of range for {self.num_items} items")
        index %= self.num_items
        audio = torch.from_numpy(self.render(index))
        n = self.segment_samples
        return {"audio": audio, "mask": torch.ones(n, dtype=torch.bool),
                "label": index % len(self.classes), "path": "", "offset": 0, "length": n,
                "seconds_start": 0.0, "seconds_total": n / self.sample_rate}

    def render(self, index: int) -> np.ndarray:
        """The float32 array (channels, segment_samples) of item ``index``."""
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, index])
        n, sr, c = self.segment_samples, self.sample_rate, self.channels
        kinds = [self.classes[index % len(self.classes)]]
        kinds += list(rng.choice(self.classes, size=rng.integers(0, self.max_events)))
        out = np.zeros((c, n))
        for j, kind in enumerate(kinds):
            main = j == 0
            length = max(16, min(n, int(n * (rng.uniform(0.5, 1.0) if main else
                                             rng.uniform(0.1, 0.6)))))
            start = int(rng.integers(0, n - length + 1)) if length < n else 0
            event = _RENDER[kind](rng, length, sr)[: n - start]
            peak = np.abs(event).max()
            gain = 1.0 if main else 10 ** (rng.uniform(-24, -6) / 20)
            pan = (np.ones(1) if c == 1 else rng.uniform(0.3, 1.0, size=c))
            out[:, start:start + len(event)] += (gain / max(peak, 1e-8)) * pan[:, None] * event
        peak = np.abs(out).max()
        if peak > 1e-8:
            out *= rng.uniform(0.25, 0.95) / peak
        return out.astype(np.float32)
