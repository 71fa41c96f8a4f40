"""Denoisers: shapes, gradients, conditioning through FiLM and cross-attention, masking."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audio_core.components.denoisers import ConvDenoiser, FrameDenoiser
from audio_core.contracts.records import Conditioning


def _net(**params) -> ConvDenoiser:
    """A small conv denoiser with a random (not zero) output layer, so outputs differ."""
    torch.manual_seed(0)
    net = ConvDenoiser(**{"dim": 3, "hidden": 16, "blocks": 2, **params})
    nn.init.normal_(net.out.weight, std=0.1)
    return net


def _inputs(batch=3, frames=11, tokens=4, cond_dim=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, tokens, dtype=torch.bool)
    mask[0, 2:] = False
    return (torch.randn(batch, 3, frames, generator=g), torch.rand(batch, generator=g),
            Conditioning(torch.randn(batch, tokens, cond_dim, generator=g), mask))


def test_output_layer_starts_at_zero():
    net = ConvDenoiser(dim=3, hidden=16, blocks=2, cond_dim=6, cross_attention=True)
    x, t, cond = _inputs()
    out = net(x, t, cond)
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(x))
    assert net.length_multiple == 1


@pytest.mark.parametrize("params", [{}, {"cond_dim": 6}, {"cond_dim": 6, "cross_attention": True},
                                    {"kernel_size": 5, "dilation_growth": 3, "blocks": 3}],
                         ids=["uncond", "film", "cross", "wide"])
def test_shapes_and_gradient_to_every_parameter(params):
    net = _net(**params)
    x, t, cond = _inputs()
    for frames in (1, 11, 32):
        x_f = torch.randn(3, 3, frames)
        assert net(x_f, t, cond).shape == (3, 3, frames)
    net(x, t, cond).pow(2).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_time_changes_the_output_in_any_range():
    net = _net()
    x, _, _ = _inputs()
    for a, b in ((0.1, 0.2), (-2.0, -1.9), (3.0, 3.05)):
        assert not torch.allclose(net(x, torch.full((3,), a)), net(x, torch.full((3,), b)))


@pytest.mark.parametrize("cross", [False, True])
def test_conditioning_changes_the_output_and_masked_tokens_do_not(cross):
    net = _net(cond_dim=6, cross_attention=cross)
    x, t, cond = _inputs()
    base = net(x, t, cond)
    other = Conditioning(cond.embeddings + 1.0, cond.mask)
    assert not torch.allclose(net(x, t, other)[1], base[1], atol=1e-4)
    changed = cond.embeddings.clone()
    changed[0, 2:] = 100.0  # masked-out tokens of example 0
    torch.testing.assert_close(net(x, t, Conditioning(changed, cond.mask)), base)


def test_cross_attention_sees_more_than_the_pooled_tokens():
    """Two conditions with the same mean token differ only through cross-attention."""
    x, t, _ = _inputs(batch=1)
    tokens = torch.randn(1, 2, 6, generator=torch.Generator().manual_seed(3))
    swapped = torch.stack([tokens[0, 0] + 0.5, tokens[0, 1] - 0.5])[None]
    mask = torch.ones(1, 2, dtype=torch.bool)
    a, b = Conditioning(tokens, mask), Conditioning(swapped, mask)
    film = _net(cond_dim=6)
    torch.testing.assert_close(film(x, t, a), film(x, t, b))
    cross = _net(cond_dim=6, cross_attention=True)
    assert not torch.allclose(cross(x, t, a), cross(x, t, b))


def test_output_is_independent_of_other_batch_items():
    net = _net(cond_dim=6, cross_attention=True)
    x, t, cond = _inputs()
    together = net(x, t, cond)
    for i in range(3):
        one = Conditioning(cond.embeddings[i:i + 1], cond.mask[i:i + 1])
        torch.testing.assert_close(net(x[i:i + 1], t[i:i + 1], one), together[i:i + 1],
                                   atol=1e-5, rtol=1e-5)


def test_an_all_padding_condition_stays_finite():
    net = _net(cond_dim=6, cross_attention=True)
    x, t, cond = _inputs()
    empty = Conditioning(cond.embeddings, torch.zeros_like(cond.mask))
    assert torch.isfinite(net(x, t, empty)).all()


def test_unconditional_use_and_bad_inputs():
    net = _net(cond_dim=6)
    x, t, _ = _inputs()
    assert net(x, t).shape == x.shape  # cond=None: unconditional
    with pytest.raises(ValueError, match="cond_dim=6"):
        net(x, t, Conditioning(torch.randn(3, 1, 5), torch.ones(3, 1, dtype=torch.bool)))
    with pytest.raises(ValueError, match=r"x \(batch, 3, frames\)"):
        net(x[:, :2], t)
    with pytest.raises(ValueError, match="cross_attention needs cond_dim"):
        ConvDenoiser(dim=3, cross_attention=True)
    with pytest.raises(ValueError, match="odd kernel_size"):
        ConvDenoiser(dim=3, kernel_size=4)


def test_runs_in_bfloat16():
    net = _net(cond_dim=6, cross_attention=True).to(torch.bfloat16)
    x, t, cond = _inputs()
    out = net(x.bfloat16(), t, cond.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_frame_denoiser_takes_the_new_signature():
    torch.manual_seed(0)
    net = FrameDenoiser(dim=3, hidden=8, layers=2)
    x, t, cond = _inputs()
    out = net(x, t, cond)
    assert out.shape == x.shape
    torch.testing.assert_close(out, net(x, t))  # conditioning is ignored
    assert not torch.allclose(net(x, t + 0.5), out)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
