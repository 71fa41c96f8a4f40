"""Entropies of the BSQ soft assignment, without materialising the 2^d codes.

The soft assignment of a unit vector ``u`` (``d`` dims) to the codes ``c`` in
``{-1/sqrt(d), +1/sqrt(d)}^d`` is ``q(c | u) = softmax_c(d * <c, u> / temperature)``. The
exponent is a sum over dimensions, so ``q`` factorises into independent bits::

    q(c | u) = prod_i q_i(c_i | u_i),   logit of bit i: a_i = 2 * sqrt(d) * u_i / temperature

* per-sample entropy ``E_u[H(q(. | u))] = E_u[sum_i H_b(sigmoid(a_i))]`` is exact in O(d);
* codebook entropy ``H(E_u[q(. | u)])`` does not factorise (the average of products is not
  a product). It is approximated by splitting the bits into groups of ``group_size`` and
  summing the entropies of each group's exact marginal, a ``(N, 2^group_size)`` table.
  ``sum_k H(Q_k) >= H(Q)`` (subadditivity); equality when one group spans all bits.

All entropies are in nats; divide by ``log(2)`` for bits.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

LN2 = math.log(2.0)


def bit_logits(u: Tensor, temperature: float = 1.0) -> Tensor:
    """Unit vectors ``(..., d)`` -> logits ``(..., d)`` of ``q_i(bit i = +1 | u)``."""
    d = u.shape[-1]
    return u * (2.0 * math.sqrt(d) / temperature)


def per_sample_entropy(logits: Tensor) -> Tensor:
    """Exact entropy of ``q(. | u)`` per vector: logits ``(..., d)`` -> ``(...)`` nats."""
    p = torch.sigmoid(logits)
    # H_b(p) = -p log p - (1 - p) log(1 - p), with log p = -softplus(-a), log(1-p) = -softplus(a)
    return (p * F.softplus(-logits) + (1.0 - p) * F.softplus(logits)).sum(-1)


@functools.lru_cache(maxsize=16)
def _selector(group: int) -> Tensor:
    """``(2 * group, 2^group)`` 0/1 matrix: row j picks codes whose bit j is 1, row
    ``group + j`` those whose bit j is 0 (code index ``sum_j bit_j 2^j``, little-endian)."""
    codes = torch.arange(2**group)
    bits = (codes[None, :] >> torch.arange(group)[:, None]) & 1
    return torch.cat([bits, 1 - bits]).float()


def group_log_probs(logits: Tensor) -> Tensor:
    """Logits ``(N, g)`` of one group -> ``log q(c_group | u)`` ``(N, 2^g)``."""
    g = logits.shape[-1]
    log_bits = torch.cat([-F.softplus(-logits), -F.softplus(logits)], dim=-1)  # (N, 2g)
    return log_bits @ _selector(g).to(device=logits.device, dtype=logits.dtype)


def codebook_entropy(logits: Tensor, group_size: int | None = None) -> Tensor:
    """``sum_k H(E_u[q(c_k | u)])`` over bit groups ``k``: logits ``(..., d)`` -> scalar nats.

    ``group_size`` (default: all bits, exact) bounds memory at ``N * 2^group_size`` floats
    per group; the last group may be smaller. Exact for ``group_size >= d``, otherwise an
    upper bound of the true codebook entropy (the bits' total correlation is ignored).
    """
    flat = rearrange(logits, "... d -> (...) d")
    d = flat.shape[-1]
    g = d if group_size is None else min(int(group_size), d)
    if g < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    total = flat.new_zeros(())
    for start in range(0, d, g):
        probs = group_log_probs(flat[:, start:start + g]).exp().mean(0)  # (2^g,)
        total = total - (probs * probs.clamp_min(1e-30).log()).sum()
    return total


def dense_entropies(u: Tensor, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Reference over all ``2^d`` codes (tests only; memory ``N * 2^d``): unit vectors
    ``(N, d)`` -> (mean per-sample entropy, codebook entropy), nats."""
    d = u.shape[-1]
    bits = (torch.arange(2**d, device=u.device)[:, None] >> torch.arange(d, device=u.device)) & 1
    codes = (bits.to(u.dtype) * 2 - 1) / math.sqrt(d)  # (2^d, d)
    log_q = torch.log_softmax(d * (u @ codes.T) / temperature, dim=-1)  # (N, 2^d)
    q = log_q.exp()
    sample = -(q * log_q).sum(-1).mean()
    avg = q.mean(0)
    return sample, -(avg * avg.clamp_min(1e-30).log()).sum()
