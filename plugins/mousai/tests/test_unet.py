"""The 1-D U-Net denoiser: geometry, latent injection, self- and cross-attention."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_mousai.unet import UNet1d

from audio_core.contracts.records import Conditioning


def unet(**kw) -> UNet1d:
    torch.manual_seed(0)
    args = dict(dim=2, channels=[8, 16, 16], factors=[1, 2, 2], items=[1, 1, 1],
                attentions=[0, 0, 1], heads=2, head_features=4, patch_size=4)
    args.update(kw)
    net = UNet1d(**args)
    for p in net.parameters():  # zero-initialised outputs would hide every dependency
        if p.dim() > 1 and not p.abs().sum():
            torch.nn.init.normal_(p, std=0.2)
    if net.input_gain is not None:
        torch.nn.init.normal_(net.input_gain.bias, std=0.2)
    return net


def tokens(batch: int, n: int, dim: int, seed: int = 1) -> Conditioning:
    g = torch.Generator().manual_seed(seed)
    return Conditioning(torch.randn(batch, n, dim, generator=g),
                        torch.ones(batch, n, dtype=torch.bool))


def test_shapes_and_geometry():
    net = unet()
    assert net.length_multiple == 16 and [net.downsampling(d) for d in range(3)] == [4, 8, 16]
    x = torch.randn(3, 2, 64)
    out = net(x, torch.rand(3))
    assert out.shape == x.shape and torch.isfinite(out).all()
    fresh = UNet1d(dim=2, channels=[8, 16, 16], factors=[1, 2, 2], items=[1, 1, 1],
                   patch_size=4)
    assert torch.equal(fresh(x, torch.rand(3)), torch.zeros_like(x))  # outputs start at zero
    with pytest.raises(ValueError, match="not a multiple of 16"):
        net(torch.randn(1, 2, 40), torch.rand(1))
    with pytest.raises(ValueError, match=r"expects x \(batch, 2, length\)"):
        net(torch.randn(1, 3, 64), torch.rand(1))


def test_time_changes_the_output():
    net = unet()
    x = torch.randn(2, 2, 32)
    assert not torch.allclose(net(x, torch.tensor([0.1, 0.1])), net(x, torch.tensor([0.9, 0.9])))


def test_attention_sits_where_configured():
    net = unet(cond_dim=6, channels=[8, 8, 16], attentions=[0, 1, 1], cross_attentions=[0, 0, 1],
               items=[1, 2, 2])

    def count(level, name):
        items = [*level.down_items, *level.up_items]
        return sum(getattr(i.transformer, name, None) is not None for i in items)

    assert [count(level, "attend") for level in net.levels] == [0, 4, 4]
    assert [count(level, "cross") for level in net.levels] == [0, 0, 4]
    heads = net.levels[2].down_items[0].transformer.attend
    assert heads.heads == 2 and heads.to_q.out_features == 2 * 4  # heads x head_features
    # self-attention changes the output: zeroing its output projections changes it back
    x, t = torch.randn(2, 2, 32), torch.rand(2)
    with_attention = net(x, t)
    for level in net.levels:
        for item in [*level.down_items, *level.up_items]:
            if item.transformer is not None and item.transformer.attend is not None:
                torch.nn.init.zeros_(item.transformer.attend.to_out.weight)
                torch.nn.init.zeros_(item.transformer.attend.to_out.bias)
    assert not torch.allclose(with_attention, net(x, t))


def test_attention_weights_keep_their_saved_names():
    """Core's attention under mousai's items has the parameter names (and shapes) mousai's
    own attention had, so saved U-Nets load: unbiased to_q / to_kv, a context norm only on
    the cross-attention."""
    item = unet(cond_dim=6).levels[2].down_items[0].transformer
    shapes = {name: tuple(p.shape) for name, p in item.state_dict().items()
              if name.startswith(("attend.", "cross."))}
    attend = {"attend.norm.weight": (16,), "attend.norm.bias": (16,),
              "attend.to_q.weight": (8, 16), "attend.to_kv.weight": (16, 16),
              "attend.to_out.weight": (16, 8), "attend.to_out.bias": (16,)}
    cross = {"cross.norm.weight": (16,), "cross.norm.bias": (16,),
             "cross.norm_context.weight": (6,), "cross.norm_context.bias": (6,),
             "cross.to_q.weight": (8, 16), "cross.to_kv.weight": (16, 6),
             "cross.to_out.weight": (16, 8), "cross.to_out.bias": (16,)}
    assert shapes == {**attend, **cross}


def test_latent_injection_at_the_configured_depth():
    net = unet(inject_depth=1, inject_dim=3)
    x, t = torch.randn(2, 2, 64), torch.rand(2)
    latent = torch.randn(2, 3, 64 // net.downsampling(1))
    out = net(x, t, latent=latent)
    assert not torch.allclose(out, net(x, t, latent=torch.zeros_like(latent)))
    with pytest.raises(ValueError, match=r"injects a latent at depth 1"):
        net(x, t)
    with pytest.raises(ValueError, match=r"\(batch, latent_dim, frames\) = \(2, 3, 8\)"):
        net(x, t, latent=torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="inject_depth must be a level"):
        UNet1d(dim=2, channels=[8], factors=[1], items=[1], inject_depth=1, inject_dim=3)


def test_cross_attention_reads_real_tokens_only():
    net = unet(cond_dim=6, attentions=[0, 1, 1])
    x, t = torch.randn(2, 2, 32), torch.rand(2)
    cond = tokens(2, 3, 6)
    out = net(x, t, cond)
    assert not torch.allclose(out, net(x, t, tokens(2, 3, 6, seed=2)))
    # padding tokens (mask False) with any values change nothing
    padded = Conditioning(torch.cat([cond.embeddings, 50 * torch.randn(2, 4, 6)], 1),
                          torch.cat([cond.mask, torch.zeros(2, 4, dtype=torch.bool)], 1))
    torch.testing.assert_close(net(x, t, padded), out, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cond_dim=6 but the conditioning has dim 5"):
        net(x, t, tokens(2, 3, 5))


def test_cross_attention_off_where_configured():
    net = unet(cond_dim=6, attentions=[0, 0, 1], cross_attentions=[0, 0, 0],
               pooled_conditioning=False)
    x, t = torch.randn(2, 2, 32), torch.rand(2)
    torch.testing.assert_close(net(x, t, tokens(2, 3, 6)), net(x, t, tokens(2, 3, 6, 2)))


def test_gradients_reach_every_parameter_and_checkpointing_changes_nothing():
    kw = dict(cond_dim=6, inject_depth=1, inject_dim=3)
    x, t, cond = torch.randn(2, 2, 32), torch.rand(2), tokens(2, 3, 6)
    latent = torch.randn(2, 3, 4)
    grads = []
    for checkpointing in (False, True):
        net = unet(checkpointing=checkpointing, **kw)
        out = net(x, t, cond, latent=latent)
        out.square().sum().backward()
        missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.any()]
        assert not missing
        grads.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for a, b in zip(grads[0][1], grads[1][1], strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("kw", "message"), [
    (dict(factors=[1, 2]), "one common length"),
    (dict(attentions=[0, 1]), "attentions needs one entry per level"),
    (dict(patch_size=0), "patch_size"),
])
def test_bad_settings_name_the_problem(kw, message):
    with pytest.raises(ValueError, match=message):
        unet(**kw)
