"""vae.dual_channel: mid/side plus left/right, against a manual computation."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_vae.losses import DualChannelLoss, mid_side

from audio_core.components.losses import WaveformL1
from audio_core.components.spectral_losses import MultiResolutionMelLoss


def test_mid_side_loss_equals_a_manual_computation():
    g = torch.Generator().manual_seed(0)
    est, ref = torch.randn(2, 2, 4000, generator=g), torch.randn(2, 2, 4000, generator=g)
    loss = DualChannelLoss(16000, inner="core.mel", lr_weight=0.5, mid_weight=2.0,
                           side_weight=3.0)
    mel = MultiResolutionMelLoss(16000)
    mid_e, side_e = (est[:, :1] + est[:, 1:]) / 2, (est[:, :1] - est[:, 1:]) / 2
    mid_r, side_r = (ref[:, :1] + ref[:, 1:]) / 2, (ref[:, :1] - ref[:, 1:]) / 2
    lr, mid, side = (mel(est, ref).value, mel(mid_e, mid_r).value, mel(side_e, side_r).value)
    out = loss(est, ref)
    torch.testing.assert_close(out.value, 0.5 * lr + 2.0 * mid + 3.0 * side)
    torch.testing.assert_close(out.parts["mid"], mid)
    torch.testing.assert_close(out.parts["side"], side)
    torch.testing.assert_close(out.parts["lr"], lr)


def test_l1_inner_with_a_mask():
    est, ref = torch.randn(1, 2, 100), torch.randn(1, 2, 100)
    mask = torch.arange(100)[None] < 60
    out = DualChannelLoss(8000, inner="core.l1")(est, ref, mask)
    l1 = WaveformL1()
    (me, se), (mr, sr) = mid_side(est), mid_side(ref)
    expected = l1(est, ref, mask).value + l1(me, mr, mask).value + l1(se, sr, mask).value
    torch.testing.assert_close(out.value, expected)


def test_only_the_side_term_sees_a_stereo_width_error():
    ref = torch.randn(1, 2, 2000)
    swapped = ref.flip(1)  # same mid, side negated
    out = DualChannelLoss(8000, inner="core.l1", lr_weight=0.0, mid_weight=1.0,
                          side_weight=0.0)(swapped, ref)
    assert float(out.value) == pytest.approx(0.0, abs=1e-7)
    assert float(out.parts["side"]) > 0.1


def test_mono_is_the_inner_loss_alone():
    est, ref = torch.randn(2, 1, 300), torch.randn(2, 1, 300)
    out = DualChannelLoss(8000, inner="core.l1", lr_weight=2.0)(est, ref)
    torch.testing.assert_close(out.value, 2.0 * (est - ref).abs().mean())
    assert set(out.parts) == {"lr"}


def test_bad_weights_and_inputs_are_errors():
    with pytest.raises(ValueError, match="side_weight"):
        DualChannelLoss(8000, side_weight=-1.0)
    with pytest.raises(ValueError, match="stereo"):
        mid_side(torch.randn(1, 3, 10))
