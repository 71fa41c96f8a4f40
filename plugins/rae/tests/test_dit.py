"""rae.dit: shapes, adaLN-Zero start, conditioning, patches, the DDT head, gradients."""

from __future__ import annotations

import re

import pytest
import torch
from audio_plugin_rae.dit import DiT
from audio_plugin_rae.transformer import sincos_positions
from conftest import noise, seeded

from audio_core.components.attention import rotary
from audio_core.contracts.records import Conditioning


def dit(**kw):
    kw = {"dim": 6, "cond_dim": 4, "width": 32, "depth": 2, "heads": 2, **kw}
    return seeded(lambda: DiT(**kw))


def label(batch: int, seed: int = 1) -> Conditioning:
    return Conditioning(noise(batch, 1, 4, seed=seed, scale=1.0),
                        torch.ones(batch, 1, dtype=torch.bool))


def perturb(model: torch.nn.Module) -> torch.nn.Module:
    """Move the zero-initialised modulation and output layers off zero."""
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.add_(noise(*p.shape, seed=100 + i, scale=0.05))
    return model


@pytest.mark.parametrize("head_depth", [0, 2])
def test_starts_at_zero_then_predicts_the_latent_shape(head_depth):
    model = dit(head_depth=head_depth, head_width=48)
    x, t = noise(3, 6, 10, scale=1.0), torch.rand(3)
    assert torch.equal(model(x, t, label(3)), torch.zeros(3, 6, 10))  # adaLN-Zero output
    out = perturb(model)(x, t, label(3))
    assert out.shape == (3, 6, 10) and out.abs().sum() > 0


@pytest.mark.parametrize("head_depth", [0, 1])
def test_output_depends_on_time_condition_and_input(head_depth):
    model = perturb(dit(head_depth=head_depth))
    x, t = noise(2, 6, 8, scale=1.0), torch.tensor([0.2, 0.7])
    ref = model(x, t, label(2))
    assert not torch.allclose(ref, model(x, t.flip(0), label(2)))
    assert not torch.allclose(ref, model(x, t, label(2, seed=2)))
    assert not torch.allclose(ref, model(x.flip(-1), t, label(2)))
    torch.testing.assert_close(model(x[:1], t[:1], Conditioning(
        label(2).embeddings[:1], label(2).mask[:1])), ref[:1], atol=1e-5, rtol=1e-5)


def test_without_a_conditioner_the_condition_is_ignored():
    model = perturb(dit(cond_dim=0))
    x, t = noise(2, 6, 8, scale=1.0), torch.rand(2)
    assert torch.equal(model(x, t, None), model(x, t, label(2)))
    with pytest.raises(ValueError, match=re.escape("rae.dit has cond_dim=4 but the "
                                                   "conditioning has dim 5")):
        dit()(x, t, Conditioning(torch.zeros(2, 1, 5), torch.ones(2, 1, dtype=torch.bool)))


def test_patches_pad_odd_lengths_and_set_the_length_multiple():
    model = perturb(dit(patch_size=4))
    assert model.length_multiple == 4 and model.embed.in_features == 24
    x, t = noise(2, 6, 10, scale=1.0), torch.rand(2)
    out = model(x, t, label(2))
    assert out.shape == (2, 6, 10)
    padded = torch.nn.functional.pad(x, (0, 2))
    torch.testing.assert_close(out, model(padded, t, label(2))[..., :10])


def test_the_ddt_head_is_wider_and_every_parameter_learns():
    model = dit(head_depth=1, head_width=64, head_heads=4)
    assert model.head[0].attn.qkv.in_features == 64 and model.out.linear.in_features == 64
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, t = noise(4, 6, 8, scale=1.0), torch.rand(4)
    for _ in range(4):  # zero-initialised layers open the path to the rest step by step
        optimizer.zero_grad()
        (model(x, t, label(4)) - x).square().mean().backward()
        optimizer.step()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent


def test_bad_input_and_settings_are_named():
    with pytest.raises(ValueError, match=re.escape("expects x (batch, 6, frames)")):
        dit()(noise(2, 5, 8), torch.rand(2))
    with pytest.raises(ValueError, match="head_width=30 must be even and divisible"):
        dit(head_depth=1, head_width=30, head_heads=4)
    with pytest.raises(ValueError, match="positions must be 'absolute' or 'rope', got 'alibi'"):
        dit(positions="alibi")


def test_sincos_positions_are_fixed_and_distinct():
    pos = sincos_positions(16, 8)
    assert pos.shape == (16, 8) and torch.equal(pos, sincos_positions(16, 8))
    assert torch.equal(pos[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert torch.cdist(pos, pos).add(torch.eye(16)).min() > 0.1


def test_rotary_scores_depend_only_on_the_distance_and_keep_norms():
    q, k = noise(1, 2, 1, 8, scale=1.0), noise(1, 2, 1, 8, seed=2, scale=1.0)
    q, k = rotary(q.expand(1, 2, 12, 8)), rotary(k.expand(1, 2, 12, 8))
    scores = q @ k.transpose(-1, -2)
    for distance in (0, 1, 5):
        diagonal = scores.diagonal(distance, dim1=-2, dim2=-1)
        torch.testing.assert_close(diagonal, diagonal[..., :1].expand_as(diagonal))
    assert not torch.allclose(scores[..., 0, 0], scores[..., 0, 5])
    torch.testing.assert_close(q.norm(dim=-1), q[..., :1, :].norm(dim=-1).expand(1, 2, 12))
    with pytest.raises(ValueError, match="even head width, got 5"):
        rotary(torch.zeros(1, 1, 3, 5))


@pytest.mark.parametrize("head_depth", [0, 1])
def test_rope_positions_add_nothing_to_the_tokens_yet_order_matters(head_depth):
    model = perturb(dit(positions="rope", head_depth=head_depth))
    assert all(block.attn.rope for block in model.blocks)
    assert model.extrapolates_length and not dit().extrapolates_length
    tokens = noise(2, 5, 32, scale=1.0)
    assert torch.equal(model.with_positions(tokens), tokens)
    assert not torch.equal(dit().with_positions(tokens), tokens)
    x, t = noise(2, 6, 8, scale=1.0), torch.rand(2)
    out = model(x, t, label(2))
    assert out.shape == (2, 6, 8) and torch.isfinite(out).all()
    assert not torch.allclose(model(x.flip(-1), t, label(2)).flip(-1), out, atol=1e-4)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())
