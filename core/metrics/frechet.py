"""Fréchet distance between Gaussians fitted to embeddings, and Fréchet audio distance
(FAD) with its sample-count-free extrapolation FAD-inf.

``FD = ||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2)``. The
trace term is computed from symmetric eigendecompositions in float64 (negative
eigenvalues from rounding clipped to 0), which stays finite and accurate for singular or
near-singular covariances (fewer samples than dimensions), where ``scipy.linalg.sqrtm`` of
the non-symmetric ``S_a S_b`` returns complex values or NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaussianStats:
    """Mean ``(dim,)`` and covariance ``(dim, dim)`` of ``count`` embeddings, float64."""

    mean: np.ndarray
    cov: np.ndarray
    count: int

    @classmethod
    def of(cls, embeddings) -> GaussianStats:
        """Statistics of ``embeddings`` ``(n, dim)``, n >= 2 (unbiased covariance)."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"need embeddings of shape (n >= 2, dim), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("embeddings contain NaN or Inf")
        return cls(x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1]),
                   x.shape[0])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """``tr((A B)^1/2)`` for PSD ``A``, ``B`` as ``sum sqrt(eig(A^1/2 B A^1/2))``."""
    root = _psd_sqrt(np.asarray(cov_a, dtype=np.float64))
    inner = root @ np.asarray(cov_b, dtype=np.float64) @ root
    values = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """Fréchet (2-Wasserstein) distance between two Gaussians, >= 0."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"embedding sizes differ: {a.mean.shape[0]} vs {b.mean.shape[0]}")
    diff = a.mean - b.mean
    value = float(diff @ diff + np.trace(a.cov) + np.trace(b.cov)
                  - 2.0 * trace_sqrt_product(a.cov, b.cov))
    return max(value, 0.0)


def fad(reference, generated) -> float:
    """Fréchet audio distance between two sets of embeddings ``(n, dim)``."""
    return frechet_distance(GaussianStats.of(reference), GaussianStats.of(generated))


@dataclass(frozen=True)
class FadInf:
    """FAD-inf: the intercept of a line fitted to ``FAD(N)`` against ``1 / N`` (FAD is
    biased upwards by ``O(1/N)`` for ``N`` generated samples), with the fit's points."""

    value: float
    slope: float
    sizes: tuple[int, ...]
    scores: tuple[float, ...]


def fad_inf(reference, generated, *, sizes: Sequence[int] | None = None, repeats: int = 3,
            seed: int = 0) -> FadInf:
    """FAD extrapolated to infinitely many generated embeddings.

    For each ``N`` in ``sizes`` (default: 5 sizes from ``min(n) // 4`` (at least 2) to
    ``n``, ``n`` the generated count), the FAD of ``repeats`` random subsets of ``N``
    generated embeddings (without replacement) against all reference embeddings is
    averaged; a least-squares line through ``(1/N, FAD)`` gives ``FAD-inf`` at ``1/N = 0``.
    """
    ref = GaussianStats.of(reference)
    gen = np.asarray(generated, dtype=np.float64)
    n = gen.shape[0]
    if sizes is None:
        low = max(2, n // 4)
        sizes = sorted({round(float(s)) for s in np.linspace(low, n, 5)})
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 2 or max(sizes) > n:
        raise ValueError(f"FAD-inf needs at least two subset sizes in [2, {n}], got {sizes}")
    rng = np.random.default_rng(seed)
    scores = []
    for size in sizes:
        draws = 1 if size == n else repeats
        scores.append(float(np.mean([
            frechet_distance(ref, GaussianStats.of(gen[rng.choice(n, size, replace=False)]))
            for _ in range(draws)])))
    slope, intercept = np.polyfit(1.0 / np.asarray(sizes, dtype=np.float64), scores, 1)
    return FadInf(float(intercept), float(slope), sizes, tuple(scores))
