"""Binary spherical quantization (BSQ): project, L2-normalise, binarise on the sphere.

``z -> u = normalize(W_in z)``, ``q = sign(u) / sqrt(d)`` with a straight-through gradient,
``latent = W_out q``. Every code lies on the unit sphere, so the implicit codebook of
``2^d`` codes needs no parameters and no lookup.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.contracts.models import DiscreteQuantizer
from audio_core.contracts.records import QuantizedResult
from audio_plugin_bsq.codes import bits_to_codes, check_bits_per_code, codes_to_bits, num_codes
from audio_plugin_bsq.entropy import LN2, bit_logits, codebook_entropy, per_sample_entropy


class BinarySphericalQuantizer(DiscreteQuantizer):
    """Latent ``(batch, dim, tokens)`` -> ``QuantizedResult`` with ``bits``-bit codes.

    Args:
        bits: code dimension ``d`` (bits per token).
        dim: latent channels; ``None`` means ``dim == bits`` and no projections.
        commitment_weight: weight of ``mean ||u - sg(q)||^2``.
        entropy_weight: weight of ``H_sample - codebook_weight * H_codebook`` (nats).
        codebook_weight: the codebook-entropy (usage) term relative to the per-sample one.
        temperature: of the soft assignment ``softmax_c(d <c, u> / temperature)``.
        group_size: bits per group of the codebook-entropy approximation (memory
            ``tokens * 2^group_size``); ``None`` or ``>= bits`` is exact.
        bits_per_code: bits per integer code (default ``min(bits, 62)``).

    ``result.codes`` is ``(batch, k, tokens)`` int64 with ``k = num_codebooks =
    ceil(bits / bits_per_code)`` integer codes per token of ``codebook_bits = bits_per_code``
    bits. The ``k`` codes together are one token: every one is needed to decode
    (``scalable = False``), so ``n_quantizers`` may only be ``None`` or ``k``.
    """

    scalable = False

    def __init__(self, bits: int = 18, dim: int | None = None, *,
                 commitment_weight: float = 0.25, entropy_weight: float = 0.1,
                 codebook_weight: float = 1.0, temperature: float = 1.0,
                 group_size: int | None = 9, bits_per_code: int | None = None) -> None:
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        self.bits, self.dim = int(bits), int(dim if dim is not None else bits)
        self.bits_per_code = check_bits_per_code(self.bits, bits_per_code)
        self.num_codebooks = num_codes(self.bits, self.bits_per_code)
        self.codebook_bits = self.bits_per_code
        self.commitment_weight, self.entropy_weight = commitment_weight, entropy_weight
        self.codebook_weight, self.temperature = codebook_weight, temperature
        self.group_size = group_size
        project = dim is not None and dim != bits
        self.proj_in = nn.Linear(self.dim, self.bits) if project else nn.Identity()
        self.proj_out = nn.Linear(self.bits, self.dim) if project else nn.Identity()

    @property
    def scale(self) -> float:
        """``1 / sqrt(bits)``: every quantized coordinate is ``+-scale``."""
        return 1.0 / math.sqrt(self.bits)

    def sphere(self, latent: Tensor) -> Tensor:
        """Latent ``(batch, dim, tokens)`` -> unit vectors ``u`` ``(batch, tokens, bits)``, fp32."""
        z = self.proj_in(rearrange(latent, "b d n -> b n d"))
        return F.normalize(z.float(), dim=-1)

    def binarize(self, u: Tensor) -> Tensor:
        """``u`` -> ``sign(u) / sqrt(d)`` (0 maps to +), straight-through: the value is
        exactly the code, the gradient is the identity."""
        hard = torch.where(u >= 0, self.scale, -self.scale).to(u.dtype)
        return hard + (u - u.detach())

    def codes_to_sphere(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, k, tokens)`` -> quantized points ``(batch, tokens, bits)``."""
        bits = codes_to_bits(rearrange(codes, "b k n -> b n k"), self.bits, self.bits_per_code)
        return torch.where(bits, self.scale, -self.scale).float()

    def project_out(self, q: Tensor) -> Tensor:
        """Quantized points ``(batch, tokens, bits)`` -> latent ``(batch, dim, tokens)``."""
        weight = getattr(self.proj_out, "weight", None)
        q = q.to(weight.dtype) if weight is not None else q
        return rearrange(self.proj_out(q), "b n d -> b d n")

    def check_n_quantizers(self, n_quantizers: int | None) -> None:
        """Refuse a partial code set: a BSQ token needs all of its ``k`` codes."""
        if n_quantizers not in (None, self.num_codebooks):
            raise ValueError(f"BSQ codes are not scalable: every token needs all "
                             f"{self.num_codebooks} of its codes, so n_quantizers must be None "
                             f"or {self.num_codebooks}, got {n_quantizers}")

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, k, tokens)`` -> latent ``(batch, dim, tokens)`` for the decoder."""
        if codes.ndim != 3 or codes.shape[1] != self.num_codebooks:
            raise ValueError(f"BSQ codes must be (batch, {self.num_codebooks}, tokens), got "
                             f"shape {tuple(codes.shape)}")
        return self.project_out(self.codes_to_sphere(codes))

    def encode(self, latent: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Latent ``(batch, dim, tokens)`` -> codes ``(batch, k, tokens)``."""
        self.check_n_quantizers(n_quantizers)
        codes = bits_to_codes(self.sphere(latent) >= 0, self.bits_per_code)
        return rearrange(codes, "b n k -> b k n")

    def forward(self, latent: Tensor, n_quantizers: int | None = None) -> QuantizedResult:
        self.check_n_quantizers(n_quantizers)
        u = self.sphere(latent)
        q = self.binarize(u)
        commitment = (u - q.detach()).square().sum(-1).mean()
        logits = bit_logits(u, self.temperature)
        sample_h = per_sample_entropy(logits).mean()
        codebook_h = codebook_entropy(logits, self.group_size)
        loss = (self.commitment_weight * commitment
                + self.entropy_weight * (sample_h - self.codebook_weight * codebook_h))
        positive = u.detach() >= 0
        codes = rearrange(bits_to_codes(positive, self.bits_per_code), "b n k -> b k n")
        metrics = {"commitment": commitment.detach(),
                   "entropy_sample_bits": sample_h.detach() / LN2,
                   "entropy_codebook_bits": codebook_h.detach() / LN2,
                   **usage_metrics(positive, codes)}
        return QuantizedResult(self.project_out(q), codes, loss, metrics, float(self.bits))

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, dim={self.dim}, group_size={self.group_size}, "
                f"temperature={self.temperature}")


@torch.no_grad()
def usage_metrics(positive: Tensor, codes: Tensor) -> dict[str, Tensor]:
    """Code usage of a batch: ``positive`` bits ``(..., d)`` bool, ``codes`` ``(b, k, n)``.

    ``bit_balance``: mean ``|P(bit) - 0.5| * 2`` (0 = every bit used half the time);
    ``unique_codes``: distinct token codes / tokens; ``code_perplexity``: ``exp`` of the
    entropy of the batch's hard code histogram (at most the number of tokens).
    """
    p = positive.float().flatten(0, -2).mean(0)
    tokens = rearrange(codes, "b k n -> (b n) k")
    if tokens.shape[1] == 1:  # one integer per token: a flat unique is much faster
        _, counts = torch.unique(tokens[:, 0], return_counts=True)
    else:
        _, counts = torch.unique(tokens, dim=0, return_counts=True)
    freq = counts.float() / tokens.shape[0]
    return {"bit_balance": ((p - 0.5).abs() * 2).mean(),
            "unique_codes": torch.tensor(counts.numel() / tokens.shape[0]),
            "code_perplexity": (-(freq * freq.log()).sum()).exp()}
