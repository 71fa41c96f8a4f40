"""Residual vector quantizer with EMA codebooks (``core.rvq``).

Stage ``i`` quantizes the residual left by stages ``< i`` to its nearest code; the
quantized latent is the sum of the chosen codes, passed straight through to the encoder.
Each stage is an :class:`~audio_core.components.rvq.codebook.EMACodebook`: EMA updates,
k-means init on the first training batch, dead-code replacement, optional SOM updates, all
kept identical on every rank.

Quantizer dropout draws the number of codebooks from a generator seeded by ``seed`` and a
step counter kept in a buffer, so it is the same on every rank (every rank makes the same
collectives) and after a resume.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.rvq.codebook import EMACodebook, usage_metrics
from audio_core.contracts.models import DiscreteQuantizer
from audio_core.contracts.records import QuantizedResult
from audio_core.schedules import ScheduledWeights, as_schedule


class ResidualVQ(ScheduledWeights, DiscreteQuantizer):
    """Residual VQ: latent ``(batch, dim, frames)`` -> :class:`QuantizedResult` with codes
    ``(batch, n, frames)``.

    Args:
        dim: latent channels.
        num_codebooks: stages ``N``; any leading subset decodes (``scalable``).
        codebook_size: codes per stage (``codebook_bits = ceil(log2(size))`` bits each).
        decay: EMA decay of the codebooks.
        commitment_weight: the result's ``loss`` is ``commitment_weight * sum_i
            mean((residual_i - code_i)^2)`` (the encoder's pull towards its codes); a number or
            a schedule (:mod:`audio_core.schedules`).
        kmeans_init / kmeans_iters: k-means on the first training batch (else random codes).
        threshold_dead: codes with an EMA count below it are replaced by batch vectors
            (0 disables).
        dropout_prob: quantizer dropout: with this probability a training batch uses only
            the first ``n ~ U{1..N}`` stages (one model, several bitrates); 0 disables.
        som: ``{sigma, sigma_decay, sigma_min}`` turns on self-organising-map codebook
            updates (:mod:`audio_core.components.rvq.som`); ``None`` disables.
        seed: seed of the quantizer-dropout draws.
        full_distances: nearest codes from the full squared distance in EnCodec's order of
            operations (imported EnCodec weights pick exactly EnCodec's codes); default: the
            cheaper form without ``|x|^2`` (the same codes up to rounding at near-ties).

    ``metrics`` hold per-codebook ``usage_i`` and ``perplexity_i``, ``commitment``,
    ``dead_codes`` (replaced this step) and ``n_quantizers``.
    """

    scalable = True  # any leading subset of the stages decodes

    steps: Tensor  # buffer: () int64, training batches seen

    def __init__(self, dim: int = 128, num_codebooks: int = 8, codebook_size: int = 1024,
                 decay: float = 0.99, commitment_weight: Any = 1.0, kmeans_init: bool = True,
                 kmeans_iters: int = 10, threshold_dead: float = 2.0, dropout_prob: float = 1.0,
                 som: dict[str, float] | None = None, seed: int = 0,
                 full_distances: bool = False) -> None:
        super().__init__()
        problems = [f"{name} {rule}, got {value}" for name, value, ok, rule in (
            ("dim", dim, dim >= 1, "must be >= 1"),
            ("num_codebooks", num_codebooks, num_codebooks >= 1, "must be >= 1"),
            ("codebook_size", codebook_size, codebook_size >= 2, "must be >= 2"),
            ("decay", decay, 0 <= decay < 1, "must be in [0, 1)"),
            ("dropout_prob", dropout_prob, 0 <= dropout_prob <= 1, "must be in [0, 1]"),
            ("threshold_dead", threshold_dead, threshold_dead >= 0, "must be >= 0"),
        ) if not ok]
        if problems:
            raise ValueError("core.rvq: " + "; ".join(problems))
        self.dim, self.num_codebooks, self.codebook_size = dim, num_codebooks, codebook_size
        self.codebook_bits = math.ceil(math.log2(codebook_size))
        self.commitment_weight = as_schedule(commitment_weight,
                                             "model.quantizer.params.commitment_weight")
        self.dropout_prob, self.seed = dropout_prob, seed
        self.codebooks = nn.ModuleList(
            EMACodebook(dim, codebook_size, decay, kmeans_init=kmeans_init,
                        kmeans_iters=kmeans_iters, threshold_dead=threshold_dead, som_params=som,
                        full_distances=full_distances)
            for _ in range(num_codebooks))
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long))

    # -- bitrate ------------------------------------------------------------------------
    def bits_per_frame(self, n_quantizers: int | None = None) -> float:
        """Information per latent frame, ``n * log2(codebook_size)`` bits."""
        return self._n(n_quantizers) * math.log2(self.codebook_size)

    def bitrate(self, frame_rate: float, n_quantizers: int | None = None) -> float:
        """Bits per second at ``frame_rate`` latent frames per second."""
        return self.bits_per_frame(n_quantizers) * frame_rate

    def _n(self, n_quantizers: int | None) -> int:
        n = self.num_codebooks if n_quantizers is None else int(n_quantizers)
        if not 1 <= n <= self.num_codebooks:
            raise ValueError(f"n_quantizers must be in 1..{self.num_codebooks}, got {n}")
        return n

    def stages(self, n: int | None = None) -> list[EMACodebook]:
        """The first ``n`` codebooks (all by default)."""
        return cast(list[EMACodebook], list(self.codebooks)[:n])

    def _rows(self, latent: Tensor) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> fp32 rows ``(batch * frames, dim)``."""
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"core.rvq expects a latent (batch, dim={self.dim}, frames), got "
                             f"shape {tuple(latent.shape)}")
        return rearrange(latent, "b d t -> (b t) d").float().contiguous()

    def sample_n_quantizers(self) -> int:
        """Quantizer dropout: the number of stages for this training batch, a function of
        ``seed`` and the step counter only (identical on every rank)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.steps))
        if torch.rand((), generator=gen).item() >= self.dropout_prob:
            return self.num_codebooks
        return int(torch.randint(1, self.num_codebooks + 1, (), generator=gen))

    # -- quantizer contract -------------------------------------------------------------
    def forward(self, latent: Tensor, n_quantizers: int | None = None) -> QuantizedResult:
        if self.training and n_quantizers is None:
            n = self.sample_n_quantizers()
            self.steps.add_(1)
        else:
            n = self._n(n_quantizers)
        rows = self._rows(latent)
        residual, total = rows, torch.zeros_like(rows)
        commitment = rows.new_zeros(())
        codes, metrics = [], {}
        for i, codebook in enumerate(self.stages(n)):
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
            c.last_replaced for c in self.stages(n)))) if self.training else torch.tensor(0.)
        return QuantizedResult(
            latent=rearrange(quantized, "(b t) d -> b d t", b=b, t=t).to(latent.dtype),
            codes=rearrange(torch.stack(codes, dim=-1), "(b t) q -> b q t", b=b, t=t),
            loss=self.scheduled(self.commitment_weight) * commitment,
            metrics=metrics, bits_per_frame=self.bits_per_frame(n))

    @torch.no_grad()
    def encode(self, latent: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> codes int64 ``(batch, n_quantizers, frames)``."""
        n = self._n(n_quantizers)
        residual = self._rows(latent)
        codes = []
        for codebook in self.stages(n):
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
        stages = self.stages(codes.shape[1])
        total = torch.stack([cb.lookup(codes[:, i]) for i, cb in enumerate(stages)]).sum(0)
        return rearrange(total, "b t d -> b d t").to(stages[0].embed.dtype)

    def code_tables(self) -> list[Tensor]:
        """Per stage, the latent each code decodes to: ``(codebook_size, dim)`` tables
        (what :meth:`decode` sums; ONNX export gathers from them)."""
        return [cb.embed.float() for cb in self.stages()]

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_codebooks={self.num_codebooks}, "
                f"codebook_size={self.codebook_size}")
