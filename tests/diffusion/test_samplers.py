"""Samplers x objectives: exactness on a delta, Gaussian recovery, orders of accuracy."""

from __future__ import annotations

import pytest
import torch

from audio_core.diffusion.objectives import (
    EDMObjective,
    RectifiedFlowObjective,
    VDiffusionObjective,
)
from audio_core.diffusion.samplers import (
    DDIMSampler,
    DPMSolverPP2MSampler,
    EulerSampler,
    HeunSampler,
)

SAMPLERS = {"ddim": DDIMSampler(), "euler": EulerSampler(), "heun": HeunSampler(),
            "dpmpp_2m": DPMSolverPP2MSampler()}
ALL_SAMPLERS = pytest.mark.parametrize("sampler", list(SAMPLERS.values()), ids=list(SAMPLERS))


def _prior(objective, shape, seed=0):
    return objective.prior(shape, generator=torch.Generator().manual_seed(seed))


def _delta(objective, sampler, steps, x0):
    x_T = _prior(objective, x0.shape, 1)
    return sampler(lambda x, t: x0.expand_as(x), x_T, objective.timesteps(steps), objective)


@ALL_SAMPLERS
def test_a_perfect_denoiser_of_a_delta_lands_on_it(sampler, objective):
    """``x0_hat = x0`` always. DDIM and DPM++ are exact for every path (their last step
    returns ``x0_hat``); Euler and Heun are exact on the straight paths (EDM, flow) and
    converge on the curved v-diffusion path (Euler first order, Heun second order)."""
    x0 = torch.randn(3, 4, 7, generator=torch.Generator().manual_seed(0))
    out = _delta(objective, sampler, 12, x0)
    assert out.shape == x0.shape and out.dtype == torch.float32
    if isinstance(objective, VDiffusionObjective) and isinstance(sampler, EulerSampler |
                                                                 HeunSampler):
        errors = [(_delta(objective, sampler, n, x0) - x0).abs().max().item()
                  for n in (10, 20, 40)]
        order = 1 if isinstance(sampler, EulerSampler) else 2
        assert errors[0] > errors[1] > errors[2]
        assert errors[1] / errors[2] > 0.8 * 2**order
    else:
        torch.testing.assert_close(out, x0, atol=1e-5, rtol=1e-5)


#: Steps for a few-percent discretisation error on the Gaussian, by order of accuracy.
STEPS = {"ddim": 128, "euler": 128, "heun": 64, "dpmpp_2m": 64}


@pytest.mark.parametrize("name", list(STEPS))
def test_gaussian_data_is_recovered(name, objective, gaussian):
    x_T = _prior(objective, (4000, 1, 4), 2)
    out = SAMPLERS[name](gaussian.denoiser(objective), x_T, objective.timesteps(STEPS[name]),
                         objective)
    assert out.mean().item() == pytest.approx(gaussian.mu, abs=0.02)
    assert out.std().item() == pytest.approx(gaussian.s, rel=0.05)


def test_stochastic_ddim_recovers_a_gaussian_reproducibly(objective, gaussian):
    sampler = DDIMSampler(eta=1.0)
    x_T = _prior(objective, (4000, 1, 4), 3)

    def run(seed):
        return sampler(gaussian.denoiser(objective), x_T, objective.timesteps(256), objective,
                       generator=torch.Generator().manual_seed(seed))

    out = run(0)
    assert out.mean().item() == pytest.approx(gaussian.mu, abs=0.02)
    assert out.std().item() == pytest.approx(gaussian.s, rel=0.05)
    assert torch.equal(out, run(0)) and not torch.equal(out, run(1))


@pytest.mark.parametrize("objective", [EDMObjective(), RectifiedFlowObjective(),
                                       RectifiedFlowObjective(shift=2.5)],
                         ids=["edm", "flow", "flow_shifted"])
def test_ddim_equals_euler_on_straight_paths(objective, gaussian):
    x_T = _prior(objective, (64, 2, 8), 4)
    grid = objective.timesteps(9)
    ddim = DDIMSampler()(gaussian.denoiser(objective), x_T, grid, objective)
    euler = EulerSampler()(gaussian.denoiser(objective), x_T, grid, objective)
    torch.testing.assert_close(ddim, euler, atol=1e-5, rtol=1e-5)


def test_ddim_differs_from_euler_on_the_curved_v_path(gaussian):
    v = VDiffusionObjective()
    x_T = _prior(v, (64, 2, 8), 4)
    ddim = DDIMSampler()(gaussian.denoiser(v), x_T, v.timesteps(9), v)
    euler = EulerSampler()(gaussian.denoiser(v), x_T, v.timesteps(9), v)
    assert (ddim - euler).abs().max().item() > 1e-3


@pytest.mark.parametrize("steps", [16, 32])
def test_second_order_samplers_beat_euler(objective, gaussian, steps):
    """Error to the exact ODE endpoint: Heun and DPM-Solver++(2M) below Euler at the same
    number of steps."""
    x_T = _prior(objective, (256, 1, 4), 5)
    exact = gaussian.exact(objective, x_T, objective.t_max)
    grid = objective.timesteps(steps)
    errors = {name: (s(gaussian.denoiser(objective), x_T, grid, objective) - exact).abs()
              .max().item() for name, s in SAMPLERS.items()}
    assert errors["heun"] < errors["euler"], errors
    assert errors["dpmpp_2m"] < errors["euler"], errors


def test_dpmpp_2m_is_second_order(gaussian):
    """On EDM's Karras grid DDIM (= DPM-Solver++ first order) halves its error when the
    steps double; 2M divides it by about four."""
    edm = EDMObjective()
    x_T = _prior(edm, (256, 1, 4), 6)
    exact = gaussian.exact(edm, x_T, edm.t_max)

    def error(sampler, steps):
        return (sampler(gaussian.denoiser(edm), x_T, edm.timesteps(steps), edm) - exact
                ).abs().max().item()

    ddim = error(DDIMSampler(), 32) / error(DDIMSampler(), 64)
    dpm = error(DPMSolverPP2MSampler(), 32) / error(DPMSolverPP2MSampler(), 64)
    assert 1.6 < ddim < 2.5 and dpm > 3.5, (ddim, dpm)


@ALL_SAMPLERS
def test_network_calls_progress_and_dtype(sampler):
    objective = RectifiedFlowObjective()
    calls, ticks = [], []

    def denoise(x, t):
        assert x.dtype == torch.float32 and t.shape == (2,)
        calls.append(t[0].item())
        return torch.zeros_like(x)

    x_T = torch.randn(2, 3, 5).to(torch.bfloat16)
    out = sampler(denoise, x_T, objective.timesteps(5), objective,
                  progress=lambda i, n: ticks.append((i, n)))
    assert out.dtype == torch.bfloat16 and out.shape == (2, 3, 5)
    assert ticks == [(i, 5) for i in range(1, 6)]
    assert len(calls) == (9 if isinstance(sampler, HeunSampler) else 5)
    assert 0.0 not in calls  # the network is never asked at t = 0


@pytest.mark.parametrize("grid", [torch.tensor([1.0, 0.5, 0.1]), torch.tensor([1.0, 1.0, 0.0]),
                                  torch.tensor([0.5, 1.0, 0.0]), torch.tensor([0.0])],
                         ids=["no_zero", "flat", "increasing", "short"])
def test_bad_grids_are_refused(grid):
    flow = RectifiedFlowObjective()
    with pytest.raises(ValueError, match="grid"):
        EulerSampler()(lambda x, t: x, torch.zeros(1, 1, 1), grid, flow)


def test_ddim_eta_is_checked():
    with pytest.raises(ValueError, match="eta"):
        DDIMSampler(eta=1.5)
