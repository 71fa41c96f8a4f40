"""core.rvq: the quantizer contract, k-means init, dead codes, dropout, SOM, metrics."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from audio_core.components.rvq import EMACodebook, ResidualVQ
from audio_core.components.rvq.kmeans import kmeans
from audio_core.contracts.models import DiscreteQuantizer
from audio_core.plugins import get_registry


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
    assert isinstance(rvq, DiscreteQuantizer) and rvq.scalable
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


def test_registered_as_core_rvq_with_every_option():
    params = {"dim": 4, "num_codebooks": 3, "codebook_size": 8, "decay": 0.9,
              "commitment_weight": 0.5, "kmeans_init": False, "kmeans_iters": 3,
              "threshold_dead": 0.5, "dropout_prob": 0.25, "som": {"sigma": 1.5}, "seed": 7}
    rvq = get_registry().build("quantizer", "core.rvq", params, path="model.quantizer")
    assert isinstance(rvq, ResidualVQ) and isinstance(rvq, DiscreteQuantizer)
    cb = rvq.codebooks[0]
    assert (rvq.num_codebooks, rvq.codebook_size, rvq.dropout_prob, rvq.seed) == (3, 8, 0.25, 7)
    assert (cb.decay, cb.kmeans_init, cb.kmeans_iters, cb.threshold_dead) == (0.9, False, 3, 0.5)
    assert cb.som == {"sigma": 1.5, "sigma_decay": 0.995, "sigma_min": 0.2}
    out = rvq.train()(torch.randn(2, 4, 6), n_quantizers=3)
    assert out.loss == pytest.approx(0.5 * float(out.metrics["commitment"]))


@pytest.mark.parametrize(("params", "message"), [
    ({"num_codebooks": 0}, "num_codebooks must be >= 1, got 0"),
    ({"codebook_size": 1}, "codebook_size must be >= 2, got 1"),
    ({"decay": 1.0}, r"decay must be in \[0, 1\), got 1.0"),
    ({"dropout_prob": 1.5}, r"dropout_prob must be in \[0, 1\], got 1.5"),
    ({"threshold_dead": -1}, "threshold_dead must be >= 0, got -1"),
    ({"som": {"sigma": 2.0, "radius": 3}}, r"unknown SOM setting\(s\) \['radius'\]"),
])
def test_bad_settings_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        ResidualVQ(dim=4, **params)


def test_latent_of_the_wrong_width_is_refused():
    rvq = ResidualVQ(dim=4, num_codebooks=2, codebook_size=8).eval()
    for call in (rvq, rvq.encode):
        with pytest.raises(ValueError, match=r"dim=4, frames\), got shape \(2, 5, 3\)"):
            call(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=r"codes must be \(batch, q, frames\)"):
        rvq.decode(torch.zeros(2, 3, 5, dtype=torch.long))


def test_codebooks_get_no_gradient_and_the_encoder_gets_the_straight_through_one():
    rvq = ResidualVQ(dim=4, num_codebooks=3, codebook_size=8, dropout_prob=0.0).train()
    z = torch.randn(2, 4, 9, requires_grad=True)
    out = rvq(z)
    weights = torch.randn_like(out.latent)
    (out.latent * weights).sum().backward()
    torch.testing.assert_close(z.grad, weights)  # d(quantized)/d(latent) = identity
    assert all(not b.requires_grad for b in rvq.buffers())


def test_without_dropout_training_uses_every_codebook():
    rvq = ResidualVQ(dim=4, num_codebooks=5, codebook_size=4, dropout_prob=0.0).train()
    z = torch.randn(1, 4, 20)
    assert {int(rvq(z).metrics["n_quantizers"]) for _ in range(10)} == {5}
    assert int(rvq.steps) == 10


def test_kmeans_finds_separated_clusters_and_their_sizes():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = centres.repeat_interleave(torch.tensor([5, 10, 15]), dim=0)
    x = x + 0.01 * torch.randn(x.shape, generator=gen)
    centroids, counts = kmeans(x, 3, iters=5, generator=gen)
    order = torch.cdist(centres, centroids).argmin(dim=1)
    assert sorted(order.tolist()) == [0, 1, 2]
    torch.testing.assert_close(centroids[order], centres, atol=0.02, rtol=0)
    assert counts[order].tolist() == [5.0, 10.0, 15.0]
