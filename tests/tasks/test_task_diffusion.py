"""EDM preconditioning, the Euler/Heun sampler, the EDM loss and the diffusion task."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from audio_core.components.conv import FrameDenoiser
from audio_core.components.samplers import (
    EDMDenoiser,
    EulerSampler,
    edm_loss_weight,
    edm_preconditioning,
    karras_sigmas,
)
from audio_core.config import load_config
from audio_core.errors import ConfigError
from audio_core.tasks.diffusion import DiffusionTask, edm_loss


@pytest.mark.parametrize(("sigma", "sd", "expected"), [
    (1.0, 0.5, (0.2, 0.5 / math.sqrt(1.25), 1 / math.sqrt(1.25), 0.0)),
    (0.5, 0.5, (0.5, 0.5 / math.sqrt(2), 1 / (0.5 * math.sqrt(2)), math.log(0.5) / 4)),
    (80.0, 0.5, (0.25 / 6400.25, 40 / math.sqrt(6400.25), 1 / math.sqrt(6400.25),
                 math.log(80) / 4)),
])
def test_edm_preconditioning_at_known_sigmas(sigma, sd, expected):
    got = edm_preconditioning(torch.tensor([sigma]), sd)
    for value, want in zip(got, expected, strict=True):
        assert value.item() == pytest.approx(want, rel=1e-6, abs=1e-7)


def test_loss_weight_gives_unit_effective_weight():
    """lambda(sigma) * c_out(sigma)^2 == 1: every noise level contributes at unit scale."""
    sigma = torch.logspace(-3, 2, 11)
    _, c_out, _, _ = edm_preconditioning(sigma, 0.5)
    torch.testing.assert_close(edm_loss_weight(sigma, 0.5) * c_out**2, torch.ones(11))


def test_edm_denoiser_is_identity_at_tiny_sigma():
    model = EDMDenoiser(FrameDenoiser(dim=3, hidden=8, layers=1))
    x = torch.randn(2, 3, 5)
    torch.testing.assert_close(model(x, torch.full((2,), 1e-6)), x, atol=1e-5, rtol=0)


def test_karras_sigmas():
    s = karras_sigmas(10, 0.002, 80.0, 7.0)
    assert s.shape == (11,)
    assert s[0].item() == pytest.approx(80.0) and s[-2].item() == pytest.approx(0.002)
    assert s[-1].item() == 0.0 and bool((s[:-1] > s[1:]).all())


@pytest.mark.parametrize("heun", [False, True])
def test_sampler_with_a_perfect_denoiser_returns_the_delta(heun):
    """Data = a delta at x0, so D(x, sigma) = x0 exactly: the ODE lands on x0."""
    x0 = torch.randn(3, 4, 7, generator=torch.Generator().manual_seed(0))
    sampler = EulerSampler(steps=12, heun=heun)
    out = sampler(lambda x, s, c: x0.expand_as(x), torch.randn(3, 4, 7))
    assert out.shape == (3, 4, 7)
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=1e-5)


def test_sampler_recovers_a_gaussian():
    """Data N(mu, s^2): the exact denoiser is mu + s^2 / (s^2 + sigma^2) * (x - mu)."""
    mu, s = 1.5, 0.3

    def denoiser(x, sigma, cond):
        k = s**2 / (s**2 + sigma[:, None, None] ** 2)
        return mu + k * (x - mu)

    out = EulerSampler(steps=32)(denoiser, torch.randn(4000, 1, 4,
                                                       generator=torch.Generator().manual_seed(1)))
    assert out.mean().item() == pytest.approx(mu, abs=0.02)
    assert out.std().item() == pytest.approx(s, rel=0.05)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_classifier_free_guidance(scale):
    """D(x, s, cond) = cond and D(x, s) = 0: guidance w lands on w * cond."""
    cond = torch.randn(2, 3, 4)

    def denoiser(x, sigma, c):
        return torch.zeros_like(x) if c is None else c

    out = EulerSampler(steps=8)(denoiser, torch.randn(2, 3, 4), cond, guidance_scale=scale)
    torch.testing.assert_close(out, scale * cond, atol=1e-5, rtol=1e-5)


def test_edm_loss_decreases_on_a_tiny_problem():
    torch.manual_seed(0)
    t = torch.linspace(0, 1, 16)
    data = 0.5 * torch.stack([torch.sin(2 * math.pi * f * t) for f in (1, 2, 3, 4)])[:, None]
    data = data.expand(4, 2, 16).contiguous()  # (batch 4, dim 2, frames 16)
    model = EDMDenoiser(FrameDenoiser(dim=2, hidden=32, layers=2))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def evaluate() -> float:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(123)
            return sum(edm_loss(model, data)[0].item() for _ in range(20)) / 20

    before = evaluate()
    for _ in range(150):
        loss, sigma = edm_loss(model, data)
        assert sigma.shape == (4,)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert evaluate() < 0.5 * before


def _cfg(**params):
    return load_config({"task": {"name": "core.diffusion", "params": params}})


def test_task_params_are_checked():
    from audio_core import get_registry

    with pytest.raises(ConfigError, match=r"task\.params\.denoiser"):
        DiffusionTask(cfg=_cfg(), registry=get_registry())
    with pytest.raises(ConfigError, match=r"task\.params\.encoder"):
        DiffusionTask(cfg=_cfg(), registry=get_registry(),
                      denoiser={"name": "core.frame_denoiser"}, encoder={"nme": "core.conv"})


def test_task_builds_an_edm_denoiser_sized_from_the_encoder():
    from audio_core import get_registry

    registry = get_registry()
    task = DiffusionTask(cfg=_cfg(), registry=registry,
                         denoiser={"name": "core.frame_denoiser", "params": {"hidden": 8}},
                         encoder={"name": "core.conv", "params": {"dim": 6, "width": 4,
                                                                   "ratios": [2, 2]}})
    module = task.build_modules()["denoiser"]
    assert isinstance(module, EDMDenoiser) and module.net.dim == 6
    assert not any(isinstance(m, nn.Conv1d) and m.in_channels == 1 for m in module.modules())
    assert all(not p.requires_grad for p in task.encoder.parameters())


@pytest.mark.integration
def test_latent_diffusion_trains_on_two_ranks(task_results):
    """60 ZeRO-2 steps on a frozen conv encoder's latents: the fixed-noise evaluation loss
    falls, the encoder is untouched and outside the engine, samples have latent shape."""
    got = task_results["diffusion"]
    assert got["roles"] == ("denoiser",) and got["global_steps"] == 60
    assert got["after"] < 0.6 * got["before"]
    assert got["encoder_unchanged"] and not got["encoder_in_engine"]
    assert all(k.startswith("net.") for k in got["initial_keys"])
    assert got["sample_shape"] == (2, 8, 16) and got["sample_finite"]


@pytest.mark.integration
def test_trainer_runs_latent_diffusion_with_ema(task_results):
    got = task_results["trainer"]["diffusion"]
    assert got["steps"] == {"denoiser": 3}
    assert "ema.safetensors" in got["files"]
    assert not any(f.startswith("encoder") for f in got["files"])
    assert got["loaded"] == "EDMDenoiser"  # loaded from the EMA export
    assert "diffusion/log_sigma" in got["logged"]
