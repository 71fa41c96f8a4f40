"""k-means (with k-means++ seeding) for codebook initialisation; local to one rank."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_rows(x: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` rows of ``x`` ``(rows, dim)``: without replacement when possible."""
    if x.shape[0] >= n:
        idx = torch.randperm(x.shape[0], generator=generator, device="cpu")[:n]
    else:
        idx = torch.randint(0, x.shape[0], (n,), generator=generator, device="cpu")
    return x[idx.to(x.device)]


def squared_distances(x: Tensor, centroids: Tensor) -> Tensor:
    """``||x_i - c_k||^2`` up to a per-row constant: ``(rows, k)`` (for argmin only)."""
    return torch.addmm(centroids.pow(2).sum(1)[None], x, centroids.t(), alpha=-2.0)


@torch.no_grad()
def kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """k-means++ seeding: ``k`` rows of ``x`` ``(rows, dim)``, each drawn with probability
    proportional to its squared distance from the rows already chosen."""
    if x.shape[0] <= k:
        return sample_rows(x, k, generator).clone()
    first = int(torch.randint(0, x.shape[0], (1,), generator=generator))
    chosen = [first]
    nearest = (x - x[first]).pow(2).sum(1)
    for _ in range(k - 1):
        weights = nearest.cpu().double()
        if weights.sum() <= 0:
            weights = torch.ones_like(weights)
        idx = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(idx)
        nearest = torch.minimum(nearest, (x - x[idx]).pow(2).sum(1))
    return x[torch.tensor(chosen, device=x.device)].clone()


@torch.no_grad()
def kmeans(x: Tensor, k: int, iters: int = 10,
           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means on ``x`` ``(rows, dim)`` -> centroids ``(k, dim)`` and cluster sizes
    ``(k,)``. Starts from k-means++ seeds; an empty cluster keeps its centroid."""
    x = x.float()
    centroids = kmeans_plus_plus(x, k, generator)
    counts = torch.zeros(k, device=x.device)
    for _ in range(iters):
        assign = squared_distances(x, centroids).argmin(dim=1)
        counts = torch.bincount(assign, minlength=k).float()
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids, counts
