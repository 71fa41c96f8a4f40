"""Factorised entropies against the dense computation over all 2^d codes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from audio_plugin_bsq.entropy import (
    bit_logits,
    codebook_entropy,
    dense_entropies,
    group_log_probs,
    per_sample_entropy,
)

BITS = 8


def unit_vectors(kind: str, n: int = 2048, d: int = BITS, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "isotropic":
        z = torch.randn(n, d, generator=g)
    elif kind == "correlated":  # every bit shares one factor
        z = torch.randn(n, d, generator=g) + torch.randn(n, 1, generator=g)
    else:  # "low_rank": 3 factors drive 8 bits
        z = torch.randn(n, 3, generator=g) @ torch.randn(3, d, generator=g)
    return F.normalize(z.double(), dim=-1)


@pytest.mark.parametrize("kind", ["isotropic", "correlated", "low_rank"])
@pytest.mark.parametrize("temperature", [1.0, 0.25, 0.05])
def test_per_sample_entropy_is_exact(kind, temperature):
    u = unit_vectors(kind)
    dense_sample, _ = dense_entropies(u, temperature)
    ours = per_sample_entropy(bit_logits(u, temperature)).mean()
    torch.testing.assert_close(ours, dense_sample, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", ["isotropic", "correlated", "low_rank"])
@pytest.mark.parametrize("temperature", [1.0, 0.25, 0.05])
def test_codebook_entropy_is_exact_when_one_group_spans_all_bits(kind, temperature):
    u = unit_vectors(kind)
    _, dense = dense_entropies(u, temperature)
    logits = bit_logits(u, temperature)
    for group in (None, BITS, 64):
        torch.testing.assert_close(codebook_entropy(logits, group), dense, atol=1e-10,
                                   rtol=1e-10)


def test_group_log_probs_are_the_dense_soft_assignment():
    u = unit_vectors("correlated", n=64)
    log_q = torch.log_softmax(BITS * (u @ _codes(BITS).T), dim=-1)
    torch.testing.assert_close(group_log_probs(bit_logits(u)), log_q, atol=1e-10, rtol=1e-10)


def test_gradients_match_the_dense_computation():
    z = torch.randn(256, BITS, dtype=torch.float64, requires_grad=True)
    u = F.normalize(z, dim=-1)
    sample, codebook = dense_entropies(u, 0.5)
    ref = torch.autograd.grad(sample - codebook, z)[0]
    logits = bit_logits(F.normalize(z, dim=-1), 0.5)
    ours = torch.autograd.grad(per_sample_entropy(logits).mean()
                               - codebook_entropy(logits, BITS), z)[0]
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-8)


# How far the grouped codebook entropy may drift from the dense one (8 bits, 2048 vectors).
# sum_k H(Q_k) - H(Q) is the total correlation between the groups: never negative, about 0
# for independent bits (what the entropy loss drives the code towards), and large when the
# bits are strongly correlated. Measured drifts are well inside these bounds.
DRIFT = {  # (kind, group) -> max relative excess at temperature 1
    ("isotropic", 4): 0.005, ("isotropic", 2): 0.005, ("isotropic", 1): 0.005,
    ("correlated", 4): 0.04, ("correlated", 2): 0.06, ("correlated", 1): 0.07,
    ("low_rank", 4): 0.10, ("low_rank", 2): 0.14, ("low_rank", 1): 0.17,
}


@pytest.mark.parametrize(("kind", "group"), sorted(DRIFT))
def test_grouped_codebook_entropy_drift_is_bounded(kind, group):
    u = unit_vectors(kind)
    _, dense = dense_entropies(u)
    grouped = codebook_entropy(bit_logits(u), group)
    excess = float((grouped - dense) / dense)
    assert excess >= -1e-12, "a grouped entropy can never be below the dense one"
    assert excess <= DRIFT[(kind, group)]


def test_grouped_entropy_never_builds_the_full_table():
    """18 bits in groups of 9: two (N, 512) tables, never (N, 2^18)."""
    seen = []
    original = torch.Tensor.exp

    def spy(self):
        seen.append(tuple(self.shape))
        return original(self)

    logits = bit_logits(F.normalize(torch.randn(64, 18), dim=-1))
    torch.Tensor.exp = spy
    try:
        codebook_entropy(logits, 9)
    finally:
        torch.Tensor.exp = original
    assert seen == [(64, 512), (64, 512)]


def _codes(d: int) -> torch.Tensor:
    bits = (torch.arange(2**d)[:, None] >> torch.arange(d)) & 1
    return (bits.double() * 2 - 1) / d**0.5
