"""Residual VQ: the codec contract, k-means init, dead codes, dropout, SOM, metrics."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from audio_plugin_soundstream.rvq import EMACodebook, ResidualVQ


def fitted(num_codebooks=4, size=16, dim=8, steps=20, seed=0, **kw) -> tuple[ResidualVQ,
                                                                            torch.Tensor]:
    """An RVQ trained (EMA updates, no dropout) on a fixed Gaussian latent batch."""
    torch.manual_seed(seed)
    data = torch.randn(4, dim, 128)
    rvq = ResidualVQ(dim=dim, num_codebooks=num_codebooks, codebook_size=size,
                     dropout_prob=0.0, **kw).train()
    for _ in range(steps):
        rvq(data)
    return rvq.eval(), data


def test_contract_codes_in_range_and_decode_of_encode():
    rvq, z = fitted()
    assert (rvq.num_codebooks, rvq.codebook_bits) == (4, 4)
    assert not list(rvq.parameters())  # EMA codebooks are buffers: no optimizer state
    codes = rvq.encode(z)
    assert codes.dtype == torch.int64 and codes.shape == (4, 4, 128)
    assert codes.min() >= 0 and codes.max() < 16
    out = rvq(z)
    torch.testing.assert_close(out.codes, codes, rtol=0, atol=0)
    torch.testing.assert_close(out.latent, rvq.decode(codes))
    assert out.latent.shape == z.shape and out.bits_per_frame == 16.0
    # a leading subset of codebooks decodes, and equals encoding with fewer quantizers
    torch.testing.assert_close(rvq.decode(codes[:, :2]), rvq.decode(rvq.encode(z, 2)))
    with pytest.raises(ValueError, match="codes must lie"):
        rvq.decode(codes + 16)
    with pytest.raises(ValueError, match="n_quantizers"):
        rvq.encode(z, 5)


def test_straight_through_gradient_and_commitment_loss():
    rvq = ResidualVQ(dim=8, num_codebooks=2, codebook_size=8).train()
    z = torch.randn(2, 8, 50, requires_grad=True)
    out = rvq(z, n_quantizers=2)
    (out.latent.sum() + out.loss).backward()
    assert z.grad is not None and out.loss > 0
    assert {"usage_0", "perplexity_1", "dead_codes", "n_quantizers", "commitment"} <= set(
        out.metrics)
    assert 1.0 <= float(out.metrics["perplexity_0"]) <= 8.0


def test_kmeans_initialisation_on_the_first_batch():
    torch.manual_seed(0)
    centres = torch.randn(8, 4) * 10
    x = (centres[torch.arange(512) % 8] + 0.01 * torch.randn(512, 4))
    cb = EMACodebook(4, 8, kmeans_init=True, kmeans_iters=20, threshold_dead=0.0).train()
    assert not bool(cb.initialized)
    cb(x)
    assert bool(cb.initialized)
    # every true centre has a code next to it: the codebook came from k-means on the batch
    nearest = torch.cdist(centres, cb.embed).min(dim=1).values
    assert nearest.max() < 0.5, nearest
    random = EMACodebook(4, 8, kmeans_init=False, threshold_dead=0.0).train()
    random(x)
    assert torch.cdist(centres, random.embed).min(dim=1).values.max() > 1.0


def test_dead_codes_are_replaced_by_batch_vectors():
    torch.manual_seed(0)
    cb = EMACodebook(4, 32, decay=0.9, kmeans_init=False, threshold_dead=1.0).train()
    x = torch.randn(256, 4) + 50.0  # far from every initial code: one code wins them all
    before = cb.embed.clone()
    codes, _ = cb(x)
    used = codes.unique()
    assert used.numel() == 1 and cb.last_replaced == 31
    replaced = torch.ones(32, dtype=torch.bool)
    replaced[used] = False
    # every replaced code is now one of the batch's vectors; usage recovers at once
    dist = (cb.embed[replaced, None] - x[None]).abs().amax(dim=-1).min(dim=1).values
    assert dist.max() == 0 and not torch.allclose(cb.embed[replaced], before[replaced])
    assert (cb.cluster_size[replaced] == 1.0).all()
    codes, _ = cb(x)
    assert codes.unique().numel() > 16


def test_quantizer_dropout_fewer_codebooks_are_monotonically_worse():
    rvq, z = fitted(num_codebooks=6, size=16, steps=25)
    errors = []
    for n in range(1, 7):
        out = rvq(z, n_quantizers=n)
        assert out.codes.shape == (4, n, 128) and torch.isfinite(out.latent).all()
        assert out.bits_per_frame == n * 4
        errors.append(float((out.latent - z).pow(2).mean()))
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.5 * errors[0]


def test_dropout_draws_the_same_count_on_every_rank_and_after_resume():
    a = ResidualVQ(dim=4, num_codebooks=8, codebook_size=4, seed=3).train()
    b = ResidualVQ(dim=4, num_codebooks=8, codebook_size=4, seed=3).train()  # "another rank"
    z = torch.randn(1, 4, 20)
    drawn = []
    for _ in range(40):
        na, nb = int(a(z).metrics["n_quantizers"]), int(b(z).metrics["n_quantizers"])
        assert na == nb
        drawn.append(na)
    assert set(drawn) == set(range(1, 9))
    resumed = ResidualVQ(dim=4, num_codebooks=8, codebook_size=4, seed=3).train()
    resumed.load_state_dict(a.state_dict())
    assert int(resumed(z).metrics["n_quantizers"]) == int(a(z).metrics["n_quantizers"])
    # eval mode and an explicit count never drop
    assert int(a.eval()(z).metrics["n_quantizers"]) == 8


def test_som_updates_move_ring_neighbours_of_the_winner():
    torch.manual_seed(0)
    x = torch.full((64, 2), 3.0)
    moved = {}
    for som in (None, {"sigma": 2.0}):
        cb = EMACodebook(2, 16, decay=0.5, kmeans_init=False, threshold_dead=0.0,
                         som_params=som).train()
        torch.manual_seed(1)
        cb.embed.copy_(torch.randn(16, 2))
        cb.embed_avg.copy_(cb.embed)
        cb.initialized.fill_(True)
        before = cb.embed.clone()
        codes, _ = cb(x)
        winner = int(codes.mode().values)
        shift = (cb.embed - before).norm(dim=1)
        moved[som is not None] = {int(i) for i in torch.nonzero(shift > 0.05)}
        ring = {(winner + d) % 16 for d in range(-6, 7)}
    assert moved[False] == {winner}
    assert winner in moved[True] and len(moved[True]) > 2 and moved[True] <= ring


def test_bitrate():
    rvq = ResidualVQ(dim=4, num_codebooks=8, codebook_size=1024)
    assert rvq.bitrate(75.0) == 6000.0 and rvq.bitrate(75.0, 2) == 1500.0
    assert ResidualVQ(dim=4, codebook_size=1000).bits_per_frame(1) == pytest.approx(
        math.log2(1000))
