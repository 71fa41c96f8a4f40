"""Residual VQ with factorised, L2-normalised codebook lookup (``soundstream.factorized_rvq``,
the quantizer of DAC).

Each stage projects the residual ``(batch, dim, frames)`` to ``codebook_dim`` channels
(1x1 conv ``in_proj``), picks the code of highest cosine similarity (both sides
L2-normalised), and maps the (unnormalised) code vector back with ``out_proj``; the
residual of the next stage is what that leaves. Codebooks are learned by gradient
(``codebook_weight``), the encoder is pulled towards them (``commitment_weight``), both
in the low-dimensional space; gradients pass straight through the lookup.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.contracts.models import DiscreteQuantizer
from audio_core.contracts.records import QuantizedResult


class FactorizedStage(nn.Module):
    """One stage: ``in_proj`` (dim -> codebook_dim), ``codebook`` (``nn.Embedding``),
    ``out_proj`` (codebook_dim -> dim)."""

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.in_proj = nn.Conv1d(dim, codebook_dim, 1)
        self.out_proj = nn.Conv1d(codebook_dim, dim, 1)
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def assign(self, projected: Tensor) -> Tensor:
        """Projected ``(batch, codebook_dim, frames)`` -> codes ``(batch, frames)``."""
        rows = F.normalize(rearrange(projected, "b d t -> (b t) d"))
        book = F.normalize(self.codebook.weight)
        # -|e - c|^2 in DAC's order of operations (not just e.c): near-ties resolve as
        # in DAC, so imported weights give exactly its codes
        scores = -(rows.pow(2).sum(1, keepdim=True) - 2 * rows @ book.t()) \
            + book.pow(2).sum(1, keepdim=True).t()
        return scores.max(dim=1).indices.view(projected.shape[0], -1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, frames)`` -> code vectors ``(batch, codebook_dim, frames)``."""
        return rearrange(self.codebook(codes), "b t d -> b d t")

    def forward(self, residual: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Residual -> (quantized ``(batch, dim, frames)``, codes, commitment, codebook
        loss); the quantized output is ``out_proj`` of the straight-through sum
        ``projected + (code - projected)``, as DAC computes it."""
        projected = self.in_proj(residual)
        codes = self.assign(projected)
        vectors = self.lookup(codes)
        commitment = F.mse_loss(projected, vectors.detach())
        codebook = F.mse_loss(vectors, projected.detach())
        return self.out_proj(projected + (vectors - projected).detach()), codes, commitment, \
            codebook


class FactorizedResidualVQ(DiscreteQuantizer):
    """Residual VQ of ``num_codebooks`` :class:`FactorizedStage` s: latent ``(batch, dim,
    frames)`` -> :class:`QuantizedResult` with codes ``(batch, n, frames)``.

    ``dropout_prob``: the probability that a training batch uses only the first ``n ~
    U{1..N}`` stages (quantizer dropout). The result's ``loss`` is ``commitment_weight *
    commitment + codebook_weight * codebook`` summed over the stages used.
    """

    scalable = True

    def __init__(self, dim: int = 1024, num_codebooks: int = 9, codebook_size: int = 1024,
                 codebook_dim: int = 8, commitment_weight: float = 0.25,
                 codebook_weight: float = 1.0, dropout_prob: float = 0.0) -> None:
        super().__init__()
        self.dim, self.num_codebooks, self.codebook_size = dim, num_codebooks, codebook_size
        self.codebook_bits = math.ceil(math.log2(codebook_size))
        self.commitment_weight, self.codebook_weight = commitment_weight, codebook_weight
        self.dropout_prob = dropout_prob
        self.stages = nn.ModuleList(FactorizedStage(dim, codebook_size, codebook_dim)
                                    for _ in range(num_codebooks))

    def _n(self, n_quantizers: int | None) -> int:
        n = self.num_codebooks if n_quantizers is None else int(n_quantizers)
        if not 1 <= n <= self.num_codebooks:
            raise ValueError(f"n_quantizers must be in 1..{self.num_codebooks}, got {n}")
        return n

    def forward(self, latent: Tensor, n_quantizers: int | None = None) -> QuantizedResult:
        n = self._n(n_quantizers)
        if self.training and n_quantizers is None and torch.rand(()) < self.dropout_prob:
            n = int(torch.randint(1, self.num_codebooks + 1, ()))
        residual, total = latent, torch.zeros_like(latent)
        codes, commitment, codebook = [], latent.new_zeros(()), latent.new_zeros(())
        for stage in self.stages[:n]:
            quantized, idx, c_loss, b_loss = stage(residual)
            total, residual = total + quantized, residual - quantized
            codes.append(idx)
            commitment, codebook = commitment + c_loss, codebook + b_loss
        return QuantizedResult(
            latent=total, codes=torch.stack(codes, dim=1),
            loss=self.commitment_weight * commitment + self.codebook_weight * codebook,
            metrics={"commitment": commitment.detach(), "codebook": codebook.detach(),
                     "n_quantizers": torch.tensor(float(n))},
            bits_per_frame=n * math.log2(self.codebook_size))

    @torch.no_grad()
    def encode(self, latent: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> codes int64 ``(batch, n, frames)``."""
        residual, codes = latent, []
        for stage in self.stages[:self._n(n_quantizers)]:
            quantized, idx, _, _ = stage(residual)
            residual = residual - quantized
            codes.append(idx)
        return torch.stack(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, q, frames)`` -> latent ``(batch, dim, frames)``: the sum over
        stages of ``out_proj(codebook[code])``."""
        if codes.ndim != 3 or not 1 <= codes.shape[1] <= self.num_codebooks:
            raise ValueError(f"codes must be (batch, q, frames) with 1 <= q <= "
                             f"{self.num_codebooks}, got shape {tuple(codes.shape)}")
        return sum(stage.out_proj(stage.lookup(codes[:, i]))
                   for i, stage in enumerate(self.stages[:codes.shape[1]]))

    def code_tables(self) -> list[Tensor]:
        """Per stage, ``out_proj`` of every code vector: ``(codebook_size, dim)`` tables
        (``out_proj`` is linear, so :meth:`decode` is a sum of rows of these; ONNX export
        gathers from them)."""
        return [rearrange(stage.out_proj(rearrange(stage.codebook.weight, "k d -> 1 d k")),
                          "1 d k -> k d") for stage in self.stages]
