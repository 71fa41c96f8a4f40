"""Built-in GAN parts: multi-scale/period/STFT discriminators, adversarial objectives with the
repulsion term, and feature matching."""

from __future__ import annotations

import pytest
import torch

from audio_core.components.adversarial import (
    OBJECTIVES,
    feature_matching_loss,
    get_objective,
    hinge_discriminator_loss,
    repulsion_loss,
)
from audio_core.components.discriminators import (
    DiscriminatorList,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    MultiScaleSTFTDiscriminator,
    WaveformDiscriminator,
)
from audio_core.plugins import get_registry
from audio_core.tasks.adversarial import split_halves

TINY = {
    "core.msd": {"scales": 3, "width": 2, "layers": 2, "max_width": 8},
    "core.mpd": {"periods": [2, 3, 5], "width": 2, "layers": 2, "max_width": 8},
    "core.msstft": {"n_ffts": [64, 128], "width": 2, "dilations": [1, 2], "max_width": 8},
    "core.mbd": {"n_ffts": [64, 128], "width": 2, "layers": 2,
                 "bands": [[0.0, 0.25], [0.25, 0.5], [0.5, 1.0]]},
}
#: (logits maps, feature maps) each tiny discriminator returns
COUNTS = {"core.msd": (3, 3 * 3), "core.mpd": (3, 3 * 3), "core.msstft": (2, 2 * 4),
          "core.mbd": (2, 2 * 3 * 4)}


def build(name: str, channels: int, **overrides):
    params = {**TINY[name], **overrides}
    return get_registry().build("discriminator", name, params, context={"channels": channels})


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("name", sorted(TINY))
def test_discriminator_outputs_and_gradients(name, channels):
    torch.manual_seed(0)
    d = build(name, channels)
    audio = torch.randn(3, channels, 1001, requires_grad=True)
    logits, features = d(audio)
    assert (len(logits), len(features)) == COUNTS[name]
    assert all(t.shape[:2] == (3, 1) for t in logits)
    assert all(f.shape[0] == 3 and f.shape[1] >= 2 for f in features)
    torch.stack([t.mean() for t in logits + features]).sum().backward()
    assert audio.grad is not None and torch.isfinite(audio.grad).all()
    assert audio.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())


def test_discriminators_do_not_mix_batch_items():
    torch.manual_seed(0)
    audio = torch.randn(2, 1, 800)
    for name in TINY:
        d = build(name, 1)
        both, first = d(audio)[0], d(audio[:1])[0]
        for a, b in zip(both, first, strict=True):
            torch.testing.assert_close(a[:1], b, atol=1e-5, rtol=1e-4)


def test_multi_scale_pools_by_two_per_scale():
    d = MultiScaleDiscriminator(scales=3, width=2, layers=1, stride=1, max_width=4)
    logits, _ = d(torch.randn(1, 1, 1000))
    assert [t.shape[-1] for t in logits] == [1000, 501, 251]


def test_multi_period_folds_by_period():
    d = MultiPeriodDiscriminator(periods=(2, 5), width=2, layers=1, stride=1, max_width=4)
    logits, features = d(torch.randn(2, 1, 1003))  # 1003 is padded to 1004 / 1005
    assert [tuple(t.shape) for t in logits] == [(2, 1, 502, 2), (2, 1, 201, 5)]
    assert features[0].shape == (2, 2, 502, 2)


def test_stft_discriminator_sees_real_and_imaginary_channels():
    d = MultiScaleSTFTDiscriminator(channels=2, n_ffts=(64,), width=2, dilations=(1,))
    spec = d.discriminators[0].spectrogram(torch.randn(1, 2, 640))
    assert spec.shape == (1, 4, 640 // 16 + 1, 33)  # (batch, 2 * channels, frames, bins)
    logits, _ = d(torch.randn(1, 2, 640))
    assert logits[0].shape == (1, 1, 41, 17)  # bins 33 -> 17 (stride 2 per dilation)


def test_stft_discriminator_runs_in_bfloat16():
    d = build("core.msstft", 1).to(torch.bfloat16)
    logits, _ = d(torch.randn(2, 1, 512, dtype=torch.bfloat16))
    assert all(t.dtype == torch.bfloat16 and torch.isfinite(t.float()).all() for t in logits)


@pytest.mark.parametrize("norm", ["none", "weight", "spectral"])
def test_norms(norm):
    d = MultiPeriodDiscriminator(periods=(2,), width=2, layers=2, max_width=4, norm=norm)
    assert d(torch.randn(1, 1, 300))[0][0].shape == (1, 1, 17, 2)
    has_param = any("parametrizations" in k for k in d.state_dict())
    assert has_param == (norm != "none")
    with pytest.raises(ValueError, match="norm must be one of"):
        WaveformDiscriminator(norm="batch")


def test_all_discriminators_train_together_in_a_gan_step():
    torch.manual_seed(0)
    ds = DiscriminatorList([build(n, 1) for n in sorted(TINY)])
    real = torch.randn(2, 1, 600)
    fake = torch.randn(2, 1, 600, requires_grad=True)
    real_l, fake_l, real_f, fake_f = split_halves(ds(torch.cat([real, fake])))
    assert len(real_l) == sum(c[0] for c in COUNTS.values())
    objective = get_objective("hinge", repulsion_weight=0.5)
    d_loss, parts = objective.discriminator_terms(real_l, fake_l)
    assert set(parts) == {"adversarial", "repulsion"} and torch.isfinite(d_loss)
    g_loss = objective.generator(fake_l) + feature_matching_loss(real_f, fake_f, relative=True)
    g_loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


# -- objectives ------------------------------------------------------------------------------
def test_repulsion_values():
    ones = torch.ones(2, 1, 3)
    assert repulsion_loss([2 * ones], [-ones]).item() == 0.0  # separated by 3 > margin 1
    assert repulsion_loss([ones], [ones]).item() == 1.0  # collapsed: the margin
    assert repulsion_loss([-ones], [ones], margin=0.5).item() == 2.5  # crossed: margin + gap
    assert repulsion_loss([ones, ones], [ones, -ones]).item() == pytest.approx(0.5)
    # per-tensor means are compared, not elements
    real = torch.tensor([[[3.0, -1.0]]])
    assert repulsion_loss([real], [torch.zeros(1, 1, 2)]).item() == 0.0


def test_repulsion_pushes_real_up_and_fake_down():
    real, fake = torch.zeros(4, 1, 5, requires_grad=True), torch.zeros(4, 1, 5,
                                                                       requires_grad=True)
    repulsion_loss([real], [fake]).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()


def test_objective_adds_weighted_repulsion_only_to_the_discriminator():
    real, fake = [torch.full((2, 1, 4), 0.2)], [torch.full((2, 1, 4), 0.1)]
    base = hinge_discriminator_loss(real, fake)
    plain = OBJECTIVES["hinge"]
    assert plain.discriminator(real, fake).item() == pytest.approx(base.item())
    with_rep = get_objective("hinge", repulsion_weight=2.0, repulsion_margin=1.0)
    assert with_rep.discriminator(real, fake).item() == pytest.approx(base.item() + 2 * 0.9)
    assert with_rep.generator(fake).item() == plain.generator(fake).item()
    ls = get_objective("least_squares", repulsion_weight=1.0, repulsion_margin=0.05)
    assert ls.discriminator_terms(real, fake)[1]["repulsion"].item() == 0.0
    with pytest.raises(ValueError, match="unknown adversarial objective"):
        get_objective("wasserstein")
    with pytest.raises(ValueError, match="repulsion_weight"):
        get_objective("hinge", repulsion_weight=-1.0)


def test_feature_matching_normalises_per_layer():
    real = [torch.zeros(2, 3, 4), torch.full((2, 5, 100), 10.0)]
    fake = [torch.ones(2, 3, 4), torch.full((2, 5, 100), 12.0)]
    assert feature_matching_loss(real, fake).item() == pytest.approx((1 + 2) / 2)
    # relative: each layer divided by mean |real| (layer 0 has mean 0: divided by eps only)
    rel = feature_matching_loss(real[1:], fake[1:], relative=True)
    assert rel.item() == pytest.approx(0.2)
