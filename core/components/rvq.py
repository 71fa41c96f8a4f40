"""A minimal residual vector quantizer (``core.rvq``): a baseline discrete codec.

``num_codebooks`` codebooks of ``codebook_size`` vectors quantize the latent in turn, each
the residual the previous ones left. Nearest neighbour by Euclidean distance, codebooks
trained by the VQ-VAE codebook loss, the encoder by straight-through gradients and a
commitment loss. No EMA, k-means init or dead-code replacement: model-family plugins ship
the full-featured quantizers; this one makes every core codec path work with core alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.models.contracts import DiscreteQuantizer
from audio_core.models.records import QuantizedResult


class ResidualVQ(DiscreteQuantizer):
    """Latent ``(batch, dim, frames)`` -> :class:`QuantizedResult` with codes
    ``(batch, n, frames)``, ``n = n_quantizers`` or all ``num_codebooks``.

    In training, with probability ``dropout`` a batch uses only the first ``n ~ U{1..K}``
    codebooks (quantizer dropout: one model serves several bitrates). Every codebook is
    still evaluated, the unused ones with weight 0, so every rank builds the same graph.
    Implements the codec contract (``encode``, ``decode``, ``num_codebooks``,
    ``codebook_bits``).
    """

    def __init__(self, dim: int = 32, num_codebooks: int = 4, codebook_size: int = 256,
                 commitment: float = 0.25, codebook_weight: float = 1.0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if dim < 1 or num_codebooks < 1 or codebook_size < 2 or not 0 <= dropout <= 1:
            raise ValueError(f"need dim >= 1, num_codebooks >= 1, codebook_size >= 2, "
                             f"0 <= dropout <= 1; got dim={dim}, num_codebooks={num_codebooks}, "
                             f"codebook_size={codebook_size}, dropout={dropout}")
        self.dim, self.num_codebooks, self.codebook_size = dim, num_codebooks, codebook_size
        self.codebook_bits = math.ceil(math.log2(codebook_size))
        self.commitment, self.codebook_weight, self.dropout = commitment, codebook_weight, dropout
        self.codebooks = nn.Parameter(torch.randn(num_codebooks, codebook_size, dim) / dim**0.5)

    def _count(self, n_quantizers: int | None) -> int:
        if n_quantizers is None:
            return self.num_codebooks
        if not 1 <= n_quantizers <= self.num_codebooks:
            raise ValueError(f"n_quantizers must be in [1, {self.num_codebooks}], "
                             f"got {n_quantizers}")
        return int(n_quantizers)

    def nearest(self, residual: Tensor, k: int) -> Tensor:
        """Codes ``(batch, frames)`` of codebook ``k`` nearest to ``(batch, dim, frames)``."""
        x = rearrange(residual.float(), "b d t -> b t d")
        cb = self.codebooks[k].float()
        dist = x.pow(2).sum(-1, keepdim=True) - 2 * x @ cb.T + cb.pow(2).sum(-1)
        return dist.argmin(-1)

    def lookup(self, codes: Tensor, k: int) -> Tensor:
        """Codes ``(batch, frames)`` of codebook ``k`` -> vectors ``(batch, dim, frames)``."""
        return rearrange(F.embedding(codes, self.codebooks[k]), "b t d -> b d t")

    def forward(self, latent: Tensor, n_quantizers: int | None = None) -> QuantizedResult:
        n = self._count(n_quantizers)
        if self.training and n_quantizers is None and torch.rand(()) < self.dropout:
            n = int(torch.randint(1, self.num_codebooks + 1, ()))
        used = self.num_codebooks if self.training else n
        residual, total = latent, torch.zeros_like(latent)
        loss = latent.new_zeros((), dtype=torch.float32)
        codes, perplexities = [], []
        for k in range(used):
            idx = self.nearest(residual, k)
            q = self.lookup(idx, k).to(latent.dtype)
            active = float(k < n)
            loss = loss + active * (
                self.codebook_weight * F.mse_loss(q.float(), residual.detach().float())
                + self.commitment * F.mse_loss(residual.float(), q.detach().float()))
            total = total + active * q
            residual = residual - q.detach()
            if k < n:
                codes.append(idx)
                probs = torch.bincount(idx.flatten(), minlength=self.codebook_size).float()
                probs = probs / probs.sum()
                perplexities.append(torch.exp(-(probs * probs.clamp_min(1e-10).log()).sum()))
        quantized = latent + (total - latent).detach()  # straight-through
        return QuantizedResult(quantized, codes=torch.stack(codes, 1), loss=loss,
                               metrics={"perplexity": torch.stack(perplexities).mean().detach(),
                                        "codebooks": torch.tensor(float(n))},
                               bits_per_frame=float(n * self.codebook_bits))

    @torch.no_grad()
    def encode(self, latent: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> codes int64 ``(batch, n, frames)``."""
        residual, codes = latent, []
        for k in range(self._count(n_quantizers)):
            idx = self.nearest(residual, k)
            codes.append(idx)
            residual = residual - self.lookup(idx, k).to(latent.dtype)
        return torch.stack(codes, 1)

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, n, frames)`` (the first ``n`` codebooks) -> ``(batch, dim, frames)``."""
        self._count(codes.shape[1])
        return torch.stack([self.lookup(codes[:, k], k) for k in range(codes.shape[1])]).sum(0)
