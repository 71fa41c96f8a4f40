"""Split residual VQ (``soundstream.split_rvq``, Mimi's quantizer).

Two residual VQs read the same latent ``(batch, dim, frames)``: a *semantic* one of
``num_semantic`` codebooks (codes ``0 .. num_semantic - 1``) and an *acoustic* one with the
rest. Each group projects the latent to ``codebook_dim`` channels (1x1 conv ``in_proj``,
no bias; none when ``codebook_dim == dim``), quantizes it residually with nearest-code
(Euclidean) lookups, and maps the sum of its code vectors back (``out_proj``); the
quantized latent is the sum of both groups' outputs.

Codebooks keep Mimi's statistics as buffers: code ``c`` is ``embed_sum[c] /
max(cluster_usage[c], eps)``. Training moves them by exponential moving averages of the
assigned vectors and their counts (summed over ranks, ``decay``), and the encoder is pulled
to its codes by a commitment loss (``commitment_weight``); the gradient passes straight
through the lookup.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.contracts.models import DiscreteQuantizer
from audio_core.contracts.records import QuantizedResult
from audio_core.distributed import all_reduce_sum_


class MimiCodebook(nn.Module):
    """``codebook_size`` codes of ``dim`` stored as ``embed_sum`` ``(size, dim)`` and
    ``cluster_usage`` ``(size,)`` buffers (``initialized`` ``(1,)`` is kept for the
    published weights' layout)."""

    embed_sum: Tensor
    cluster_usage: Tensor
    initialized: Tensor

    def __init__(self, codebook_size: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("embed_sum", torch.randn(codebook_size, dim))
        self.register_buffer("cluster_usage", torch.ones(codebook_size))
        self.register_buffer("initialized", torch.ones(1))

    def vectors(self) -> Tensor:
        """The codes ``(size, dim)``: ``embed_sum / max(cluster_usage, eps)``."""
        return self.embed_sum / self.cluster_usage.clamp(min=self.eps)[:, None]

    def assign(self, rows: Tensor, vectors: Tensor) -> Tensor:
        """Nearest code (Euclidean, fp32) of each row of ``rows`` ``(n, dim)`` -> ``(n,)``."""
        return torch.cdist(rows[None].float(), vectors[None].float())[0].argmin(dim=-1)

    @torch.no_grad()
    def update(self, rows: Tensor, codes: Tensor, decay: float) -> None:
        """EMA of the per-code counts and sums of ``rows`` ``(n, dim)`` assigned to
        ``codes`` ``(n,)``, all-reduced over ranks."""
        size, dim = self.embed_sum.shape
        stats = torch.zeros(size, dim + 1, device=rows.device)
        stats[:, 0] = torch.bincount(codes, minlength=size).float()
        stats[:, 1:].index_add_(0, codes, rows.detach().float())
        all_reduce_sum_(stats)
        self.cluster_usage.lerp_(stats[:, 0].to(self.cluster_usage.dtype), 1 - decay)
        self.embed_sum.lerp_(stats[:, 1:].to(self.embed_sum.dtype), 1 - decay)


class ResidualGroup(nn.Module):
    """One group: ``in_proj`` (dim -> codebook_dim or none), ``codebooks``, ``out_proj``;
    ``decay``: EMA decay of the codebooks in training."""

    def __init__(self, dim: int, count: int, codebook_size: int, codebook_dim: int,
                 decay: float) -> None:
        super().__init__()
        self.decay = decay
        project = codebook_dim != dim
        self.in_proj = nn.Conv1d(dim, codebook_dim, 1, bias=False) if project else None
        self.out_proj = nn.Conv1d(codebook_dim, dim, 1, bias=False) if project else None
        self.codebooks = nn.ModuleList(MimiCodebook(codebook_size, codebook_dim)
                                       for _ in range(count))

    def quantize(self, latent: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """Latent ``(batch, dim, frames)`` with the first ``n`` codebooks -> codes ``(batch,
        n, frames)``, the sum of their vectors and the projected latent (both ``(batch,
        codebook_dim, frames)``)."""
        projected = self.in_proj(latent) if self.in_proj is not None else latent
        residual = rearrange(projected, "b d t -> b t d")
        total = torch.zeros_like(residual)
        codes = []
        for codebook in self.codebooks[:n]:
            vectors = codebook.vectors()
            idx = codebook.assign(residual.reshape(-1, residual.shape[-1]), vectors)
            idx = idx.view(residual.shape[:-1])
            chosen = F.embedding(idx, vectors)
            if self.training:
                codebook.update(residual.reshape(-1, residual.shape[-1]), idx.view(-1),
                                self.decay)
            residual, total = residual - chosen, total + chosen
            codes.append(idx)
        return torch.stack(codes, dim=1), rearrange(total, "b t d -> b d t"), projected

    def code_tables(self) -> list[Tensor]:
        """Per codebook, ``out_proj`` of every code: ``(codebook_size, dim)`` tables
        (``out_proj`` is linear without bias, so :meth:`decode` is a sum of their rows)."""
        tables = [rearrange(c.vectors(), "k d -> 1 d k") for c in self.codebooks]
        if self.out_proj is not None:
            tables = [self.out_proj(t) for t in tables]
        return [rearrange(t, "1 d k -> k d") for t in tables]

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, q, frames)`` -> ``out_proj`` of the summed vectors ``(batch, dim,
        frames)``."""
        total = torch.zeros((), device=codes.device)
        for i, codebook in enumerate(self.codebooks[:codes.shape[1]]):
            total = total + F.embedding(codes[:, i], codebook.vectors())
        total = rearrange(total, "b t d -> b d t")
        return self.out_proj(total) if self.out_proj is not None else total


class SplitResidualVQ(DiscreteQuantizer):
    """Mimi's split residual VQ (module docstring): latent ``(batch, dim, frames)`` ->
    :class:`QuantizedResult` with codes ``(batch, n, frames)``, semantic codes first.

    ``n_quantizers`` must be at least ``num_semantic`` (the semantic codes are always
    used); ``decay``: EMA decay of the codebook statistics in training.
    """

    scalable = True

    def __init__(self, dim: int = 512, num_codebooks: int = 32, num_semantic: int = 1,
                 codebook_size: int = 2048, codebook_dim: int = 256,
                 commitment_weight: float = 1.0, decay: float = 0.99) -> None:
        super().__init__()
        if not 1 <= num_semantic < num_codebooks:
            raise ValueError(f"num_semantic must be in 1..num_codebooks - 1 = "
                             f"{num_codebooks - 1}, got {num_semantic}")
        self.dim, self.num_codebooks, self.num_semantic = dim, num_codebooks, num_semantic
        self.codebook_size = codebook_size
        self.codebook_bits = math.ceil(math.log2(codebook_size))
        self.commitment_weight = commitment_weight
        self.semantic = ResidualGroup(dim, num_semantic, codebook_size, codebook_dim, decay)
        self.acoustic = ResidualGroup(dim, num_codebooks - num_semantic, codebook_size,
                                      codebook_dim, decay)

    def _n(self, n_quantizers: int | None) -> int:
        n = self.num_codebooks if n_quantizers is None else int(n_quantizers)
        if not self.num_semantic <= n <= self.num_codebooks:
            raise ValueError(f"n_quantizers must be in {self.num_semantic}.."
                             f"{self.num_codebooks} (the semantic codebooks are always "
                             f"used), got {n}")
        return n

    def _check_latent(self, latent: Tensor) -> None:
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"split_rvq expects a latent (batch, dim={self.dim}, frames), "
                             f"got shape {tuple(latent.shape)}")

    def forward(self, latent: Tensor, n_quantizers: int | None = None) -> QuantizedResult:
        self._check_latent(latent)
        n = self._n(n_quantizers)
        codes, out, commitment = [], torch.zeros_like(latent), latent.new_zeros(())
        for group, count in ((self.semantic, self.num_semantic),
                             (self.acoustic, n - self.num_semantic)):
            if count == 0:
                continue
            idx, total, projected = group.quantize(latent, count)
            commitment = commitment + F.mse_loss(projected, total.detach())
            straight = projected + (total - projected).detach()
            out = out + (group.out_proj(straight) if group.out_proj is not None else straight)
            codes.append(idx)
        return QuantizedResult(
            latent=out, codes=torch.cat(codes, dim=1),
            loss=self.commitment_weight * commitment,
            metrics={"commitment": commitment.detach(), "n_quantizers": torch.tensor(float(n))},
            bits_per_frame=n * math.log2(self.codebook_size))

    @torch.no_grad()
    def encode(self, latent: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> codes int64 ``(batch, n, frames)``."""
        self._check_latent(latent)
        n = self._n(n_quantizers)
        codes = [self.semantic.quantize(latent, self.num_semantic)[0]]
        if n > self.num_semantic:
            codes.append(self.acoustic.quantize(latent, n - self.num_semantic)[0])
        return torch.cat(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, q, frames)``, ``num_semantic <= q <= num_codebooks`` -> latent
        ``(batch, dim, frames)``: the semantic group's output plus the acoustic group's."""
        if codes.ndim != 3 or not self.num_semantic <= codes.shape[1] <= self.num_codebooks:
            raise ValueError(f"codes must be (batch, q, frames) with {self.num_semantic} <= q "
                             f"<= {self.num_codebooks}, got shape {tuple(codes.shape)}")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        out = self.semantic.decode(codes[:, : self.num_semantic])
        if codes.shape[1] > self.num_semantic:
            out = out + self.acoustic.decode(codes[:, self.num_semantic:])
        return out

    def code_tables(self) -> list[Tensor]:
        """Per codebook (semantic first), the latent each code contributes: ``(codebook_size,
        dim)`` tables; :meth:`decode` is the sum of the chosen rows (ONNX export gathers
        from them)."""
        return self.semantic.code_tables() + self.acoustic.code_tables()
