"""Classifier-free guidance: one network call, exact at scale 1, null dropping for training."""

from __future__ import annotations

import pytest
import torch

from audio_core.contracts.records import Conditioning
from audio_core.diffusion.guidance import drop_conditioning, guided_denoiser, pad_tokens
from audio_core.diffusion.objectives import EDMObjective, RectifiedFlowObjective


def _cond(batch=3, tokens=2, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, tokens, dtype=torch.bool)
    mask[0, -1] = False
    return Conditioning(torch.randn(batch, tokens, dim, generator=g), mask)


class RecordingNet:
    """``net(x, t, c) = x * (1 + t) + pooled(c)`` broadcast over frames; records each call's
    batch size."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, x, t, cond):
        self.batches.append(x.shape[0])
        bias = 0.0 if cond is None else cond.pooled().sum(-1)[:, None, None]
        return x * (1 + t[:, None, None]) + bias


def _inputs(batch=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 4, 6, generator=g), torch.full((batch,), 0.7)


@pytest.mark.parametrize("objective", [EDMObjective(), RectifiedFlowObjective()],
                         ids=["edm", "flow"])
def test_scale_one_is_exactly_the_conditional_prediction(objective):
    net, cond, null = RecordingNet(), _cond(), _cond(1, 1, seed=5)
    x, t = _inputs()
    out = guided_denoiser(net, objective, cond, null, 1.0)(x, t)
    expect = objective.denoised(net(*objective.net_inputs(x, t), cond), x, t)
    assert torch.equal(out, expect)
    assert net.batches == [3, 3]  # one call each, conditional half only


@pytest.mark.parametrize("scale", [0.0, 2.5, 7.0])
def test_guidance_is_one_call_on_the_doubled_batch(scale):
    objective = RectifiedFlowObjective()
    net, cond, null = RecordingNet(), _cond(), _cond(1, 1, seed=5)
    x, t = _inputs()
    out = guided_denoiser(net, objective, cond, null, scale)(x, t)
    assert net.batches == [6]
    x0_c = objective.denoised(net(*objective.net_inputs(x, t), cond), x, t)
    null_batch = Conditioning(null.embeddings.expand(3, -1, -1), null.mask.expand(3, -1))
    x0_u = objective.denoised(net(*objective.net_inputs(x, t), null_batch), x, t)
    torch.testing.assert_close(out, x0_u + scale * (x0_c - x0_u))
    if scale == 0.0:
        torch.testing.assert_close(out, x0_u)


def test_unconditional_uses_the_null_or_nothing():
    objective = RectifiedFlowObjective()
    x, t = _inputs()
    seen = []

    def net(x, t, cond):
        seen.append(cond)
        return torch.zeros_like(x)

    null = _cond(3, 1, seed=2)
    guided_denoiser(net, objective, None, null, 4.0)(x, t)
    guided_denoiser(net, objective, None, None, 4.0)(x, t)
    assert seen[0] is null and seen[1] is None


def test_guidance_needs_a_null_for_scale_other_than_one():
    with pytest.raises(ValueError, match="null"):
        guided_denoiser(RecordingNet(), RectifiedFlowObjective(), _cond(), None, 3.0)


def test_network_input_dtype_can_be_set():
    objective = RectifiedFlowObjective()
    dtypes = []

    def net(x, t, cond):
        dtypes.append(x.dtype)
        return torch.zeros_like(x)

    x, t = _inputs()
    out = guided_denoiser(net, objective, _cond(), _cond(1, 1), 2.0, dtype=torch.bfloat16)(x, t)
    assert dtypes == [torch.bfloat16] and out.dtype == torch.float32


def test_drop_conditioning_swaps_in_the_null_per_example():
    cond = _cond(3, 4)
    null = Conditioning(torch.randn(1, 1, 4, requires_grad=True), torch.ones(1, 1, dtype=bool))
    out = drop_conditioning(cond, null, torch.tensor([False, True, False]))
    assert out.embeddings.shape == (3, 4, 4) and out.mask.shape == (3, 4)
    assert torch.equal(out.embeddings[0], cond.embeddings[0])
    assert torch.equal(out.mask[2], cond.mask[2])
    assert torch.equal(out.embeddings[1, 0], null.embeddings[0, 0])
    assert out.mask[1].tolist() == [True, False, False, False]
    assert torch.equal(out.embeddings[1, 1:], torch.zeros(3, 4))
    out.embeddings.sum().backward()
    assert null.embeddings.grad is not None and null.embeddings.grad.abs().sum() > 0


def test_drop_conditioning_pads_a_short_condition_to_a_long_null():
    cond, null = _cond(2, 1), _cond(2, 3, seed=4)
    out = drop_conditioning(cond, null, torch.tensor([True, False]))
    assert out.embeddings.shape == (2, 3, 4)
    assert torch.equal(out.embeddings[0], null.embeddings[0])
    assert out.mask[1].tolist() == [True, False, False]


def test_drop_conditioning_checks_the_mask_and_null_rows():
    with pytest.raises(ValueError, match="drop_mask"):
        drop_conditioning(_cond(), _cond(1, 1), torch.tensor([True]))
    with pytest.raises(ValueError, match="null conditioning"):
        drop_conditioning(_cond(3), _cond(2), torch.tensor([True, False, True]))


def test_pad_tokens_pads_and_trims():
    cond = _cond(2, 3)
    padded = pad_tokens(cond, 5)
    assert padded.embeddings.shape == (2, 5, 4) and not padded.mask[:, 3:].any()
    torch.testing.assert_close(padded.pooled(), cond.pooled())
    assert pad_tokens(cond, 1).embeddings.shape == (2, 1, 4)
