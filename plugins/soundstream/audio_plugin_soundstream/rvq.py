"""Residual vector quantizer with EMA codebooks (``soundstream.rvq``).

Stage ``i`` quantizes the residual left by stages ``< i`` to its nearest code; the
quantized latent is the sum of the chosen codes, passed straight through to the encoder.
Codebooks are buffers updated by exponential moving averages of the vectors assigned to
them (no gradients), initialised by k-means on the first training batch, with unused
("dead") codes replaced by vectors of the current batch.

Distributed training keeps every codebook identical on every rank: the per-code counts and
sums are all-reduced before the EMA update (so every rank computes the same update),
k-means runs on rank 0 and is broadcast, and dead-code replacements are drawn on rank 0
and broadcast. Quantizer dropout draws the number of codebooks from a generator seeded by
``seed`` and a step counter kept in a buffer, the same on every rank and after a resume.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.models.records import QuantizedResult
from audio_plugin_soundstream import som as som_map
from audio_plugin_soundstream.kmeans import (
    all_reduce_sum_,
    broadcast_,
    kmeans,
    sample_rows,
    squared_distances,
)


class EMACodebook(nn.Module):
    """One quantizer stage: ``codebook_size`` codes of ``dim`` updated by EMA.

    ``threshold_dead``: a code whose EMA count falls below it is replaced by a vector of
    the current batch (0 disables). ``som_params``: ``{sigma, sigma_decay, sigma_min}`` turns on
    self-organising-map neighbourhood updates (:mod:`audio_plugin_soundstream.som`).
    """

    def __init__(self, dim: int, codebook_size: int, decay: float = 0.99, eps: float = 1e-5,
                 kmeans_init: bool = True, kmeans_iters: int = 10, threshold_dead: float = 2.0,
                 som_params: dict[str, float] | None = None) -> None:
        super().__init__()
        self.dim, self.codebook_size, self.decay, self.eps = dim, codebook_size, decay, eps
        self.kmeans_init, self.kmeans_iters = kmeans_init, kmeans_iters
        self.threshold_dead = threshold_dead
        self.som = {"sigma": 8.0, "sigma_decay": 0.995, "sigma_min": 0.2, **(som_params or {})} \
            if som_params is not None else None
        embed = torch.randn(codebook_size, dim)
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("updates", torch.tensor(0, dtype=torch.long))
        self.last_replaced = 0

    # -- lookups ------------------------------------------------------------------------
    def assign(self, x: Tensor) -> Tensor:
        """Nearest code of each row of ``x`` ``(rows, dim)`` -> ``(rows,)`` int64."""
        return squared_distances(x.float(), self.embed.float()).argmin(dim=1)

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


class ResidualVQ(nn.Module):
    """Residual VQ: latent ``(batch, dim, frames)`` -> :class:`QuantizedResult`.

    ``num_codebooks`` stages of ``codebook_size`` codes (``codebook_bits = log2(size)``
    bits each). Training: each stage's codebook follows an EMA of its assigned residuals;
    with probability ``dropout_prob`` a batch uses only the first ``n ~ U{1..N}`` stages
    (quantizer dropout: one model, several bitrates). The result's ``loss`` is
    ``commitment_weight * sum_i mean((residual_i - code_i)^2)``; ``metrics`` hold
    per-codebook ``usage_i`` and ``perplexity_i``, ``dead_codes`` and ``n_quantizers``.
    """

    def __init__(self, dim: int = 128, num_codebooks: int = 8, codebook_size: int = 1024,
                 decay: float = 0.99, commitment_weight: float = 1.0, kmeans_init: bool = True,
                 kmeans_iters: int = 10, threshold_dead: float = 2.0, dropout_prob: float = 1.0,
                 som: dict[str, float] | None = None, seed: int = 0) -> None:
        super().__init__()
        if num_codebooks < 1 or codebook_size < 2:
            raise ValueError(f"need num_codebooks >= 1 and codebook_size >= 2, got "
                             f"{num_codebooks} and {codebook_size}")
        self.dim, self.num_codebooks, self.codebook_size = dim, num_codebooks, codebook_size
        self.codebook_bits = math.ceil(math.log2(codebook_size))
        self.commitment_weight, self.dropout_prob, self.seed = commitment_weight, dropout_prob, seed
        self.codebooks = nn.ModuleList(
            EMACodebook(dim, codebook_size, decay, kmeans_init=kmeans_init,
                        kmeans_iters=kmeans_iters, threshold_dead=threshold_dead, som_params=som)
            for _ in range(num_codebooks))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long))

    # -- bitrate ------------------------------------------------------------------------
    def bits_per_frame(self, n_quantizers: int | None = None) -> float:
        return self._n(n_quantizers) * math.log2(self.codebook_size)

    def bitrate(self, frame_rate: float, n_quantizers: int | None = None) -> float:
        """Bits per second at ``frame_rate`` latent frames per second."""
        return self.bits_per_frame(n_quantizers) * frame_rate

    def _n(self, n_quantizers: int | None) -> int:
        n = self.num_codebooks if n_quantizers is None else int(n_quantizers)
        if not 1 <= n <= self.num_codebooks:
            raise ValueError(f"n_quantizers must be in 1..{self.num_codebooks}, got {n}")
        return n

    def sample_n_quantizers(self) -> int:
        """Quantizer dropout: the number of stages for this training batch, a function of
        ``seed`` and the step counter only (identical on every rank)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.steps))
        if torch.rand((), generator=gen).item() >= self.dropout_prob:
            return self.num_codebooks
        return int(torch.randint(1, self.num_codebooks + 1, (), generator=gen))

    # -- codec contract -----------------------------------------------------------------
    def forward(self, latent: Tensor, n_quantizers: int | None = None) -> QuantizedResult:
        if self.training and n_quantizers is None:
            n = self.sample_n_quantizers()
            self.steps.add_(1)
        else:
            n = self._n(n_quantizers)
        rows = rearrange(latent, "b d t -> (b t) d").float().contiguous()
        residual, total = rows, torch.zeros_like(rows)
        commitment = rows.new_zeros(())
        codes, metrics = [], {}
        for i, codebook in enumerate(self.codebooks[:n]):
            idx, vectors = codebook(residual)
            commitment = commitment + F.mse_loss(residual, vectors)
            residual = residual - vectors
            total = total + vectors
            codes.append(idx)
            usage, perplexity = usage_metrics(idx, self.codebook_size)
            metrics[f"usage_{i}"], metrics[f"perplexity_{i}"] = usage, perplexity
        quantized = rows + (total - rows).detach()  # straight-through estimator
        b, t = latent.shape[0], latent.shape[-1]
        metrics["n_quantizers"] = torch.tensor(float(n))
        metrics["commitment"] = commitment.detach()
        metrics["dead_codes"] = torch.tensor(float(sum(
            c.last_replaced for c in self.codebooks[:n]))) if self.training else torch.tensor(0.)
        return QuantizedResult(
            latent=rearrange(quantized, "(b t) d -> b d t", b=b, t=t).to(latent.dtype),
            codes=rearrange(torch.stack(codes, dim=-1), "(b t) q -> b q t", b=b, t=t),
            loss=self.commitment_weight * commitment,
            metrics=metrics, bits_per_frame=self.bits_per_frame(n))

    @torch.no_grad()
    def encode(self, latent: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> codes int64 ``(batch, n_quantizers, frames)``."""
        n = self._n(n_quantizers)
        residual = rearrange(latent, "b d t -> (b t) d").float().contiguous()
        codes = []
        for codebook in self.codebooks[:n]:
            idx = codebook.assign(residual)
            residual = residual - codebook.lookup(idx)
            codes.append(idx)
        b, t = latent.shape[0], latent.shape[-1]
        return rearrange(torch.stack(codes, dim=-1), "(b t) q -> b q t", b=b, t=t)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, q, frames)`` (the first ``q <= num_codebooks`` stages) -> latent
        ``(batch, dim, frames)`` in the codebooks' dtype."""
        if codes.ndim != 3 or not 1 <= codes.shape[1] <= self.num_codebooks:
            raise ValueError(f"codes must be (batch, q, frames) with 1 <= q <= "
                             f"{self.num_codebooks}, got shape {tuple(codes.shape)}")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        total = sum(cb.lookup(codes[:, i]) for i, cb in enumerate(self.codebooks[:codes.shape[1]]))
        return rearrange(total, "b t d -> b d t").to(self.codebooks[0].embed.dtype)

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_codebooks={self.num_codebooks}, "
                f"codebook_size={self.codebook_size}")
