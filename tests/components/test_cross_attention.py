"""Core's one cross-attention: its math, masks, gradients, and the conv denoiser's weights
saved in the ``nn.MultiheadAttention`` layout loading into it."""

from __future__ import annotations

import math

import pytest
import torch
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.attention import CrossAttention, multihead_keys
from audio_core.components.denoisers import ConvDenoiser, block_cross_attention
from audio_core.contracts.records import Conditioning


def _conditioning(batch: int = 3, tokens: int = 5, dim: int = 6, seed: int = 1) -> Conditioning:
    """Row 0 has two padded tokens, row 1 none at all, row 2 is full."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, tokens, dtype=torch.bool)
    mask[0, 3:] = False
    mask[1] = False
    return Conditioning(torch.randn(batch, tokens, dim, generator=g), mask)


def _reference(attn: CrossAttention, x: Tensor, context: Tensor | None,
               mask: Tensor | None) -> Tensor:
    """The same layer written out: softmax(q k^T / sqrt(d) on the allowed keys) v."""
    x = attn.norm(x)
    source = x if context is None else attn.norm_context(context)
    k, v = attn.to_kv(source).chunk(2, dim=-1)
    q, k, v = (rearrange(a, "b n (h d) -> b h n d", h=attn.heads)
               for a in (attn.to_q(x), k, v))
    scores = torch.einsum("bhnd,bhmd->bhnm", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~rearrange(mask, "b m -> b 1 1 m"), float("-inf"))
    out = torch.einsum("bhnm,bhmd->bhnd", scores.softmax(-1), v)
    return attn.to_out(rearrange(out, "b h n d -> b n (h d)"))


@pytest.mark.parametrize("options", [
    {},
    {"context_norm": True, "zero_out": True},
    {"qkv_bias": True, "norm": False},
], ids=["plain", "mousai", "biased-no-norm"])
def test_matches_the_written_out_attention_for_self_and_context(options):
    torch.manual_seed(0)
    attn = CrossAttention(8, heads=2, head_features=3, context_features=6, **options)
    nn.init.normal_(attn.to_out.weight, std=0.3)
    cond = _conditioning()
    x = torch.randn(3, 7, 8)
    mask = cond.mask.clone()
    mask[1, 0] = True  # forward itself needs one key per row
    out = attn(x, cond.embeddings, mask)
    assert out.shape == (3, 7, 8)
    torch.testing.assert_close(out, _reference(attn, x, cond.embeddings, mask),
                               atol=1e-6, rtol=1e-6)
    own = CrossAttention(8, heads=2, head_features=3, **options)
    torch.testing.assert_close(own(x), _reference(own, x, None, None), atol=1e-6, rtol=1e-6)


def test_attend_ignores_padding_and_leaves_rows_without_tokens_alone():
    torch.manual_seed(0)
    attn = CrossAttention(8, heads=2, head_features=4, context_features=6, context_norm=True)
    cond = _conditioning()
    x = torch.randn(3, 7, 8)
    update = attn.attend(x, cond)
    assert update.shape == (3, 7, 8) and torch.isfinite(update).all()
    assert torch.equal(update[1], torch.zeros(7, 8))  # row 1 has no real token
    assert update[0].abs().sum() > 0 and update[2].abs().sum() > 0
    padded = cond.embeddings.clone()
    padded[0, 3:] = 100.0
    padded[1] = -100.0
    torch.testing.assert_close(attn.attend(x, Conditioning(padded, cond.mask)), update)
    torch.testing.assert_close(update[:1], _reference(attn, x[:1], cond.embeddings[:1],
                                                      cond.mask[:1]), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("options", [
    {"context_features": 6, "context_norm": True, "zero_out": True},
    {"context_features": 6, "qkv_bias": True},
    {"zero_out": True},
], ids=["mousai-cross", "denoiser-cross", "mousai-self"])
def test_gradients_reach_every_parameter(options):
    torch.manual_seed(0)
    attn = CrossAttention(8, heads=2, head_features=4, **options)
    nn.init.normal_(attn.to_out.weight, std=0.3)  # a zero output layer passes no gradient
    cond = _conditioning(dim=6)
    x = torch.randn(3, 7, 8, requires_grad=True)
    out = attn(x) if "context_features" not in options else attn.attend(x, cond)
    out.pow(2).mean().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_zero_out_starts_as_no_update_and_bad_widths_are_refused():
    attn = CrossAttention(8, heads=2, head_features=4, context_features=6, zero_out=True)
    cond = _conditioning(dim=6)
    assert torch.equal(attn.attend(torch.randn(3, 7, 8), cond), torch.zeros(3, 7, 8))
    with pytest.raises(ValueError, match="heads, head_features >= 1, got 8, 0, 4"):
        CrossAttention(8, heads=0, head_features=4)


class _OldCrossAttention(nn.Module):
    """The conv denoiser's cross-attention before it used core's: LayerNorm, then
    ``nn.MultiheadAttention`` with a key padding mask; rows without tokens get no update."""

    def __init__(self, hidden: int, cond_dim: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, kdim=cond_dim, vdim=cond_dim,
                                          batch_first=True)

    def attend(self, frames: Tensor, cond: Conditioning) -> Tensor:
        has_tokens = cond.mask.any(1)
        ignore = ~(cond.mask | rearrange(~has_tokens, "b -> b 1"))
        query = self.norm(frames)
        emb = cond.embeddings.to(query.dtype)
        out, _ = self.attn(query, emb, emb, key_padding_mask=ignore, need_weights=False)
        return out * rearrange(has_tokens, "b -> b 1 1").to(out.dtype)


def _old(hidden: int, cond_dim: int, heads: int, seed: int) -> _OldCrossAttention:
    torch.manual_seed(seed)
    old = _OldCrossAttention(hidden, cond_dim, heads)
    for p in old.parameters():  # MultiheadAttention starts its biases at zero
        nn.init.normal_(p, std=0.3)
    return old


@pytest.mark.parametrize("cond_dim", [16, 6], ids=["in_proj", "q_k_v_proj"])
def test_multihead_layout_loads_and_computes_the_same(cond_dim):
    old = _old(16, cond_dim, 4, seed=2)
    state = old.state_dict()
    assert ("attn.in_proj_weight" in state) == (cond_dim == 16)
    new = block_cross_attention(16, cond_dim, 4)
    new.load_state_dict(state)  # strict: every old key is mapped, every new one filled
    cond = _conditioning(dim=cond_dim)
    frames = torch.randn(3, 9, 16)
    torch.testing.assert_close(new.attend(frames, cond), old.attend(frames, cond),
                               atol=1e-6, rtol=1e-6)
    assert torch.equal(new.attend(frames, cond)[1], torch.zeros(9, 16))


@pytest.mark.parametrize("cond_dim", [16, 6], ids=["in_proj", "q_k_v_proj"])
def test_a_conv_denoiser_saved_with_multihead_attention_loads(cond_dim):
    """A whole denoiser state dict in the old layout loads strictly, and the denoiser then
    computes what it computed with the old blocks."""
    torch.manual_seed(0)
    net = ConvDenoiser(dim=3, hidden=16, blocks=2, cond_dim=cond_dim, cross_attention=True)
    nn.init.normal_(net.out.weight, std=0.1)
    olds = [_old(16, cond_dim, 4, seed=10 + i) for i in range(2)]
    state = {k: v for k, v in net.state_dict().items() if ".cross." not in k}
    for i, old in enumerate(olds):
        state.update({f"blocks.{i}.cross.{k}": v for k, v in old.state_dict().items()})
    assert any(k.startswith("blocks.1.cross.attn.out_proj") for k in state)
    net.load_state_dict(state)
    x, t, cond = torch.randn(3, 3, 11), torch.rand(3), _conditioning(dim=cond_dim)
    new_out = net(x, t, cond)
    for block, old in zip(net.blocks, olds, strict=True):
        block.cross = old  # the old computation, same weights
    torch.testing.assert_close(new_out, net(x, t, cond), atol=1e-6, rtol=1e-6)


def test_an_incomplete_multihead_layout_is_named_by_load_state_dict():
    old = _old(16, 6, 4, seed=3).state_dict()
    del old["attn.k_proj_weight"]
    with pytest.raises(RuntimeError, match=r"to_kv\.weight"):
        block_cross_attention(16, 6, 4).load_state_dict(old)
    state = {"x.attn.out_proj.bias": torch.zeros(2), "other": torch.ones(1)}
    multihead_keys(state, "x.attn.", "x.")
    assert set(state) == {"x.to_out.bias", "other"}
