"""One residual-VQ stage: a codebook of vectors that follow an EMA of their assignments.

Codebooks are buffers (no gradients, no optimizer state), initialised by k-means on the
first training batch and updated by exponential moving averages of the vectors assigned to
each code; codes whose EMA count falls below a threshold ("dead" codes) are replaced by
vectors of the current batch.

Across ranks every codebook stays identical: per-code counts and sums are all-reduced before
the EMA update (every rank computes the same update), and k-means and the dead-code
replacements run on rank 0 and are broadcast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.components.rvq import som as som_map
from audio_core.components.rvq.kmeans import kmeans, sample_rows, squared_distances
from audio_core.distributed import all_reduce_sum_, broadcast_

#: SOM settings used for keys a ``som`` mapping leaves out.
SOM_DEFAULTS = {"sigma": 8.0, "sigma_decay": 0.995, "sigma_min": 0.2}


class EMACodebook(nn.Module):
    """One quantizer stage: ``codebook_size`` codes of ``dim`` updated by EMA.

    ``threshold_dead``: a code whose EMA count falls below it is replaced by a vector of
    the current batch (0 disables). ``som_params``: ``{sigma, sigma_decay, sigma_min}`` (missing
    keys from :data:`SOM_DEFAULTS`) turns on self-organising-map neighbourhood updates
    (:mod:`audio_core.components.rvq.som`). ``full_distances``: see :meth:`assign`.
    """

    embed: Tensor  # buffers: (codebook_size, dim), ..., () bool, () int64
    embed_avg: Tensor
    cluster_size: Tensor
    initialized: Tensor
    updates: Tensor

    def __init__(self, dim: int, codebook_size: int, decay: float = 0.99, eps: float = 1e-5,
                 kmeans_init: bool = True, kmeans_iters: int = 10, threshold_dead: float = 2.0,
                 som_params: dict[str, float] | None = None,
                 full_distances: bool = False) -> None:
        super().__init__()
        self.full_distances = full_distances
        self.dim, self.codebook_size, self.decay, self.eps = dim, codebook_size, decay, eps
        self.kmeans_init, self.kmeans_iters = kmeans_init, kmeans_iters
        self.threshold_dead = threshold_dead
        if som_params is not None and set(som_params) - set(SOM_DEFAULTS):
            raise ValueError(f"unknown SOM setting(s) {sorted(set(som_params) - set(SOM_DEFAULTS))}"
                             f"; expected some of {sorted(SOM_DEFAULTS)}")
        self.som = None if som_params is None else {**SOM_DEFAULTS, **som_params}
        embed = torch.randn(codebook_size, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("updates", torch.tensor(0, dtype=torch.long))
        self.last_replaced = 0

    # -- lookups ------------------------------------------------------------------------
    def assign(self, x: Tensor) -> Tensor:
        """Nearest code of each row of ``x`` ``(rows, dim)`` -> ``(rows,)`` int64.

        ``full_distances``: the full squared distance ``|x|^2 - 2 x.c + |c|^2`` in that
        order (EnCodec's arithmetic, so near-ties resolve as in EnCodec's weights); else
        the cheaper ``|c|^2 - 2 x.c`` (the same nearest code up to rounding)."""
        x, embed = x.float(), self.embed.float()
        if self.full_distances:
            dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ embed.t() \
                + embed.t().pow(2).sum(0, keepdim=True)
            return dist.neg().max(dim=-1).indices
        return squared_distances(x, embed).argmin(dim=1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Codes (any shape) -> vectors ``(*codes.shape, dim)`` in float32."""
        return F.embedding(codes, self.embed.float())

    # -- training updates -----------------------------------------------------------------
    @torch.no_grad()
    def initialise(self, x: Tensor) -> None:
        """k-means on rank 0's ``x`` ``(rows, dim)`` (or the random init), then broadcast."""
        if self.kmeans_init:
            centroids, counts = kmeans(x, self.codebook_size, self.kmeans_iters)
            self.embed.copy_(centroids)
            self.cluster_size.copy_(counts)
        for buf in (self.embed, self.cluster_size):
            broadcast_(buf)
        self.embed_avg.copy_(self.embed * self.cluster_size[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def update(self, x: Tensor, codes: Tensor) -> None:
        """EMA update from ``x`` ``(rows, dim)`` assigned to ``codes`` ``(rows,)`` (summed
        over ranks), then dead-code replacement from rank 0's ``x``."""
        k = self.codebook_size
        counts = torch.bincount(codes, minlength=k).float()
        sums = torch.zeros(k, self.dim, device=x.device).index_add_(0, codes, x)
        if self.som is not None:
            sigma = som_map.sigma_at(int(self.updates), self.som["sigma"],
                                     self.som["sigma_decay"], self.som["sigma_min"])
            counts, sums = som_map.spread(counts, sums, sigma)
        stats = all_reduce_sum_(torch.cat([counts[:, None], sums], dim=1))
        size = self.cluster_size.float().lerp(stats[:, 0], 1 - self.decay)
        avg = self.embed_avg.float().lerp(stats[:, 1:], 1 - self.decay)
        total = size.sum()
        smoothed = (size + self.eps) / (total + k * self.eps) * total  # Laplace smoothing
        self.cluster_size.copy_(size)
        self.embed_avg.copy_(avg)
        self.embed.copy_(avg / smoothed[:, None])
        self.updates.add_(1)
        self.last_replaced = self.replace_dead(x) if self.threshold_dead > 0 else 0

    @torch.no_grad()
    def replace_dead(self, x: Tensor) -> int:
        """Codes with EMA count below ``threshold_dead`` get vectors of rank 0's ``x``.
        Returns how many were replaced (the same on every rank)."""
        dead = self.cluster_size < self.threshold_dead
        n = int(dead.sum())
        if n == 0:
            return 0
        fresh = sample_rows(x.float(), n).contiguous()
        broadcast_(fresh)
        self.embed[dead] = fresh.to(self.embed.dtype)
        self.embed_avg[dead] = (fresh * self.threshold_dead).to(self.embed_avg.dtype)
        self.cluster_size[dead] = self.threshold_dead
        return n

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Rows ``x`` ``(rows, dim)`` -> their codes ``(rows,)`` and code vectors
        ``(rows, dim)`` (float32, no gradient). Training also updates the codebook."""
        x = x.detach().float()
        if self.training and not bool(self.initialized):
            self.initialise(x)
        codes = self.assign(x)
        vectors = self.lookup(codes)
        if self.training:
            self.update(x, codes)
        return codes, vectors


def usage_metrics(codes: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Fraction of the codebook used and the perplexity ``exp(H)`` of codes ``(rows,)``."""
    p = torch.bincount(codes, minlength=size).float() / max(1, codes.numel())
    entropy = -(p * p.clamp_min(1e-12).log()).sum()
    return (p > 0).float().mean(), entropy.exp()
