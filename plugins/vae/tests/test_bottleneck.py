"""vae.gaussian: closed-form KL, free bits, the scheduled KL weight, metrics, collapse."""

from __future__ import annotations

import logging

import pytest
import torch
from audio_plugin_vae.bottleneck import GaussianBottleneck, gaussian_kl
from torch.distributions import Normal, kl_divergence

from audio_core.contracts.models import Quantizer
from audio_core.errors import ConfigError


def encoded(mean: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    return torch.cat([mean, raw], dim=1)


@pytest.mark.parametrize("scale", ["softplus", "logvar"])
def test_kl_equals_the_closed_form(scale):
    g = torch.Generator().manual_seed(0)
    mean, raw = torch.randn(3, 4, 7, generator=g), torch.randn(3, 4, 7, generator=g)
    bottleneck = GaussianBottleneck(kl_weight=1.0, scale=scale, min_std=0.0).eval()
    out = bottleneck(encoded(mean, raw))
    std = torch.nn.functional.softplus(raw) if scale == "softplus" else (0.5 * raw).exp()
    reference = kl_divergence(Normal(mean, std), Normal(0.0, 1.0))  # (3, 4, 7)
    torch.testing.assert_close(gaussian_kl(mean, 2 * std.log()), reference)
    per_channel = reference.mean(dim=(0, 2))
    torch.testing.assert_close(out.loss, per_channel.mean())
    torch.testing.assert_close(out.metrics["kl"], per_channel.mean())
    for c in range(4):
        torch.testing.assert_close(out.metrics[f"kl_channel/{c}"], per_channel[c])
    assert isinstance(bottleneck, Quantizer) and out.codes is None
    torch.testing.assert_close(out.latent, mean)  # eval mode: the posterior mean


def test_training_samples_with_the_posterior_std():
    mean = torch.full((2000, 1, 4), 0.5)
    raw = torch.full((2000, 1, 4), 2.0)  # logvar 2 -> std e
    out = GaussianBottleneck(scale="logvar").train()(encoded(mean, raw))
    z = out.latent
    assert abs(float(z.mean()) - 0.5) < 0.1
    assert abs(float(z.std()) - torch.e) < 0.1


def test_free_bits_leave_channels_under_the_threshold_unpenalised():
    # channel 0: KL ~ 0.005 nats (under 0.1); channel 1: KL ~ 2 nats (over)
    mean = torch.tensor([0.1, 2.0]).view(1, 2, 1).repeat(2, 1, 5).requires_grad_(True)
    raw = torch.zeros(2, 2, 5, requires_grad=True)
    bottleneck = GaussianBottleneck(kl_weight=1.0, free_bits=0.1, scale="logvar").eval()
    out = bottleneck(encoded(mean, raw))
    per_channel = torch.stack([out.metrics["kl_channel/0"], out.metrics["kl_channel/1"]])
    assert per_channel[0] < 0.1 < per_channel[1]
    torch.testing.assert_close(out.loss, (0.1 + per_channel[1]) / 2)  # floor on channel 0
    out.loss.backward()
    assert torch.all(mean.grad[:, 0] == 0) and torch.all(raw.grad[:, 0] == 0)
    assert torch.all(mean.grad[:, 1] != 0)
    torch.testing.assert_close(out.metrics["kl_penalised"], out.loss.detach())
    assert float(out.metrics["active_channels"]) == 0.5


def test_without_free_bits_every_channel_has_a_gradient():
    mean = torch.tensor([0.1, 2.0]).view(1, 2, 1).repeat(2, 1, 5).requires_grad_(True)
    GaussianBottleneck(kl_weight=1.0).eval()(encoded(mean, torch.zeros(2, 2, 5))).loss.backward()
    assert torch.all(mean.grad != 0)


def test_the_kl_weight_follows_its_schedule_exactly():
    schedule = {"start": 0.0, "end": 1e-3, "warmup_steps": 100, "delay_steps": 10}
    bottleneck = GaussianBottleneck(kl_weight=schedule).eval()
    x = torch.randn(1, 4, 3)
    unweighted = GaussianBottleneck(kl_weight=1.0).eval()(x).loss
    for step, expected in ((0, 0.0), (10, 0.0), (35, 2.5e-4), (110, 1e-3), (500, 1e-3)):
        bottleneck.set_step(step)
        out = bottleneck(x)
        assert float(out.metrics["kl_weight"]) == pytest.approx(expected, abs=1e-12)
        torch.testing.assert_close(out.loss, expected * unweighted)


def test_bad_params_are_errors_naming_the_key():
    with pytest.raises(ConfigError, match="kl_weight"):
        GaussianBottleneck(kl_weight={"start": 0.0})
    with pytest.raises(ValueError, match="scale"):
        GaussianBottleneck(scale="exp")
    with pytest.raises(ValueError, match="free_bits"):
        GaussianBottleneck(free_bits=-1.0)
    with pytest.raises(ValueError, match="2 \\* dim"):
        GaussianBottleneck()(torch.randn(1, 3, 4))


def test_collapse_warning_when_most_channels_carry_nothing(caplog):
    bottleneck = GaussianBottleneck(collapse_threshold=0.01, warn_every=10).train()
    collapsed = encoded(torch.zeros(2, 4, 8), torch.full((2, 4, 8), 0.5413))  # std ~ 1
    with caplog.at_level(logging.WARNING, logger="audio_plugin_vae"):
        bottleneck.set_step(5)
        out = bottleneck(collapsed)
        bottleneck.set_step(6)
        bottleneck(collapsed)  # within warn_every: no second warning
        bottleneck.set_step(15)
        bottleneck(collapsed)
    warnings = [r for r in caplog.records if "posterior collapse" in r.message]
    assert len(warnings) == 2 and "4 of 4 latent channels" in warnings[0].message
    assert float(out.metrics["active_channels"]) == 0.0


def test_no_collapse_warning_when_channels_are_used(caplog):
    bottleneck = GaussianBottleneck().train()
    with caplog.at_level(logging.WARNING, logger="audio_plugin_vae"):
        bottleneck(encoded(torch.randn(2, 4, 8) * 3, torch.zeros(2, 4, 8)))
    assert not [r for r in caplog.records if "posterior collapse" in r.message]
