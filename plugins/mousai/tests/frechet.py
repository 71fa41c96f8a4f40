"""A small Fréchet audio distance for the tests (core has no FAD yet).

The embedding is deliberately simple and fixed (no learned model): per STFT frame (n_fft
512, hop 256, Hann, channels averaged) the log power in ``bands`` log-spaced frequency bands.
The distance is the Fréchet distance between Gaussians fitted to the frames of two sets of
clips: ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

N_FFT, HOP = 512, 256


def band_matrix(bins: int, bands: int, sample_rate: int, low: float = 50.0) -> Tensor:
    """``(bands, bins)`` averaging weights of log-spaced bands from ``low`` Hz to Nyquist."""
    freqs = torch.linspace(0, sample_rate / 2, bins, dtype=torch.float64)
    edges = torch.logspace(math.log10(low), math.log10(sample_rate / 2), bands + 1,
                           dtype=torch.float64)
    weights = torch.stack([((freqs >= lo) & (freqs < hi)).double()
                           for lo, hi in itertools.pairwise(edges)])
    weights[weights.sum(1) == 0, torch.argmin((freqs - edges[1]).abs())] = 1.0  # narrow bands
    return weights / weights.sum(1, keepdim=True)


def frame_features(audio: Tensor, sample_rate: int, bands: int = 24) -> Tensor:
    """Clips ``(batch, channels, time)`` -> frames ``(batch * frames, bands)`` (float64)."""
    mono = audio.double().mean(1)
    spec = torch.stft(mono, N_FFT, HOP, window=torch.hann_window(N_FFT, dtype=torch.float64),
                      return_complex=True).abs().square()
    power = torch.einsum("kf,bfn->bnk", band_matrix(spec.shape[1], bands, sample_rate), spec)
    return torch.log(power + 1e-8).reshape(-1, bands)


def _sqrt_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` and ``b`` ``(n, d)``."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_a = _sqrt_psd(cov_a)
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def audio_frechet(generated: Tensor, reference: Tensor, sample_rate: int) -> float:
    """The test FAD of ``generated`` against ``reference`` clips (each ``(batch, channels,
    time)``; lengths may differ between the two sets)."""
    return frechet_distance(frame_features(generated, sample_rate),
                            frame_features(reference, sample_rate))
