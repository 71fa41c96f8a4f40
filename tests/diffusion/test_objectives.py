"""Objectives: the noising path, its derivatives, training targets, time grids, the loss."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from audio_core.diffusion.objectives import (
    EDMObjective,
    RectifiedFlowObjective,
    VDiffusionObjective,
)


def _batch(seed: int = 0, shape=(5, 3, 7)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_path_is_clean_at_zero_and_derivatives_match_finite_differences(objective):
    alpha, sigma = objective.alpha_sigma(torch.zeros(2))
    assert alpha.tolist() == [1.0, 1.0] and sigma.tolist() == [0.0, 0.0]
    t = torch.linspace(0.05, 0.95, 7, dtype=torch.float64) * objective.t_max
    eps = 1e-4 * objective.t_max
    (a_hi, s_hi), (a_lo, s_lo) = objective.alpha_sigma(t + eps), objective.alpha_sigma(t - eps)
    d_alpha, d_sigma = objective.alpha_sigma_derivative(t)
    assert d_alpha.dtype == d_sigma.dtype == torch.float32 and d_alpha.shape == (7,)
    torch.testing.assert_close(d_alpha, ((a_hi.double() - a_lo.double()) / (2 * eps)).float(),
                               atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(d_sigma, ((s_hi.double() - s_lo.double()) / (2 * eps)).float(),
                               atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("objective", [VDiffusionObjective(), RectifiedFlowObjective(),
                                       RectifiedFlowObjective(shift="auto")],
                         ids=["v", "flow", "flow_auto"])
def test_flow_and_v_paths_are_pure_noise_at_t_max(objective):
    alpha, sigma = objective.alpha_sigma(torch.tensor([objective.t_max]))
    assert alpha.item() == 0.0 and sigma.item() == 1.0


def test_v_diffusion_is_the_cosine_schedule():
    t = torch.rand(20, generator=torch.Generator().manual_seed(3))
    alpha, sigma = VDiffusionObjective().alpha_sigma(t)
    torch.testing.assert_close(alpha, torch.cos(t * math.pi / 2))
    torch.testing.assert_close(sigma, torch.sin(t * math.pi / 2))


def test_predicting_the_target_gives_back_x0(objective):
    """``denoised(target)`` is ``x0``, and ``net_inputs`` is what training showed the net."""
    x0, noise = _batch()
    t = objective.sample_time(5, size=21, generator=torch.Generator().manual_seed(1))
    net_input, net_time, target, weight = objective.training_example(x0, noise, t)
    assert target.shape == x0.shape and weight.shape == (5,) and net_time.shape == (5,)
    assert target.dtype == weight.dtype == torch.float32
    x_t = objective.noised(x0, noise, t)
    again_input, again_time = objective.net_inputs(x_t, t)
    torch.testing.assert_close(again_input, net_input)
    torch.testing.assert_close(again_time, net_time)
    torch.testing.assert_close(objective.denoised(target, x_t, t), x0, atol=1e-4, rtol=1e-4)


def test_training_example_keeps_the_input_dtype(objective):
    x0, noise = _batch()
    net_input, *_ = objective.training_example(x0.bfloat16(), noise.bfloat16(),
                                               torch.full((5,), 0.5))
    assert net_input.dtype == torch.bfloat16


def test_training_example_checks_shapes(objective):
    x0, noise = _batch()
    with pytest.raises(ValueError, match="noise shaped like x0"):
        objective.training_example(x0, noise[:, :2], torch.full((5,), 0.5))
    with pytest.raises(ValueError, match=r"t \(batch,\)"):
        objective.training_example(x0, noise, torch.full((4,), 0.5))


@pytest.mark.parametrize(("sigma", "expected"), [
    (1.0, (0.2, 0.5 / math.sqrt(1.25), 1 / math.sqrt(1.25), 0.0)),
    (0.5, (0.5, 0.5 / math.sqrt(2), 1 / (0.5 * math.sqrt(2)), math.log(0.5) / 4)),
    (80.0, (0.25 / 6400.25, 40 / math.sqrt(6400.25), 1 / math.sqrt(6400.25), math.log(80) / 4)),
])
def test_edm_preconditioning_at_known_sigmas(sigma, expected):
    got = EDMObjective(sigma_data=0.5).preconditioning(torch.tensor([sigma]))
    for value, want in zip(got, expected, strict=True):
        assert value.item() == pytest.approx(want, rel=1e-6, abs=1e-7)


def test_edm_target_with_unit_weight_is_lambda_weighted_denoising_error():
    """``||F - target||^2 == lambda(sigma) ||D - x0||^2`` with ``lambda = (s^2 + sd^2) /
    (s sd)^2`` for any network output ``F``: EDM's loss weighting."""
    edm = EDMObjective()
    x0, noise = _batch()
    sigma = torch.logspace(-2, 1.5, 5)
    _, _, target, weight = edm.training_example(x0, noise, sigma)
    output = torch.randn_like(x0)
    d = edm.denoised(output, edm.noised(x0, noise, sigma), sigma)
    lam = (sigma**2 + 0.25) / (sigma * 0.5) ** 2
    torch.testing.assert_close(weight, torch.ones(5))
    torch.testing.assert_close((output - target).pow(2).mean((1, 2)),
                               lam * (d - x0).pow(2).mean((1, 2)), rtol=1e-4, atol=1e-5)


def test_edm_network_sees_unit_variance_and_log_sigma():
    edm = EDMObjective(sigma_data=0.5)
    x0 = 0.5 * torch.randn(64, 4, 256, generator=torch.Generator().manual_seed(0))
    noise = torch.randn_like(x0)
    sigma = torch.full((64,), 3.0)
    net_input, net_time, _, _ = edm.training_example(x0, noise, sigma)
    assert net_input.std().item() == pytest.approx(1.0, rel=0.02)
    torch.testing.assert_close(net_time, torch.full((64,), math.log(3.0) / 4))


def test_v_and_flow_targets():
    x0, noise = _batch()
    t = torch.linspace(0.1, 0.9, 5)
    v = VDiffusionObjective()
    a, s = v.alpha_sigma(t)
    torch.testing.assert_close(v.training_example(x0, noise, t)[2],
                               a[:, None, None] * noise - s[:, None, None] * x0)
    torch.testing.assert_close(RectifiedFlowObjective().training_example(x0, noise, t)[2],
                               noise - x0)
    torch.testing.assert_close(v.net_inputs(x0, t)[1], t)


def test_training_times_are_reproducible_and_in_range(objective):
    draw = [objective.sample_time(1000, size=64, generator=torch.Generator().manual_seed(7))
            for _ in range(2)]
    assert draw[0].shape == (1000,) and draw[0].dtype == torch.float32
    assert torch.equal(draw[0], draw[1])
    assert bool((draw[0] >= 0).all()) and bool((draw[0] <= objective.t_max).all())


def test_edm_training_sigmas_are_log_normal():
    sigma = EDMObjective(p_mean=-1.2, p_std=1.2).sample_time(
        20000, generator=torch.Generator().manual_seed(0))
    assert sigma.log().mean().item() == pytest.approx(-1.2, abs=0.03)
    assert sigma.log().std().item() == pytest.approx(1.2, rel=0.02)


def test_rectified_flow_training_times():
    g = torch.Generator().manual_seed(0)
    t = RectifiedFlowObjective(logit_mean=0.5, logit_std=0.8).sample_time(20000, generator=g)
    logit = (t / (1 - t)).log()
    assert logit.mean().item() == pytest.approx(0.5, abs=0.03)
    assert logit.std().item() == pytest.approx(0.8, rel=0.02)
    u = RectifiedFlowObjective(time_distribution="uniform").sample_time(20000, generator=g)
    assert u.mean().item() == pytest.approx(0.5, abs=0.01)
    # a shift of 3 moves the uniform median to 3 * 0.5 / (1 + 2 * 0.5) = 0.75
    shifted = RectifiedFlowObjective(time_distribution="uniform", shift=3.0).sample_time(
        20000, generator=g)
    assert shifted.median().item() == pytest.approx(0.75, abs=0.01)


def test_timesteps_decrease_from_t_max_to_exactly_zero(objective):
    for steps in (1, 2, 10, 37):
        grid = objective.timesteps(steps, size=64 * 128)
        assert grid.shape == (steps + 1,) and grid.dtype == torch.float32
        assert grid[0].item() == pytest.approx(objective.t_max) and grid[-1].item() == 0.0
        assert bool((grid[:-1] > grid[1:]).all())
    with pytest.raises(ValueError, match="steps"):
        objective.timesteps(0)


def test_karras_grid():
    grid = EDMObjective(sigma_min=0.002, sigma_max=80.0, rho=7.0).timesteps(10)
    assert grid[0].item() == pytest.approx(80.0) and grid[-2].item() == pytest.approx(0.002)
    ramp = torch.linspace(0, 1, 10, dtype=torch.float64)
    hi, lo = 80 ** (1 / 7), 0.002 ** (1 / 7)
    torch.testing.assert_close(grid[:-1], ((hi + ramp * (lo - hi)) ** 7).float())


def test_auto_shift_is_the_resolution_formula():
    flow = RectifiedFlowObjective(shift="auto", shift_base=4096)
    size = 64 * 1024
    s = math.sqrt(size / 4096)
    assert flow.shift_for(size) == pytest.approx(4.0) == s
    linear = torch.linspace(1, 0, 9, dtype=torch.float64)
    torch.testing.assert_close(flow.timesteps(8, size=size),
                               (s * linear / (1 + (s - 1) * linear)).float())
    assert torch.equal(RectifiedFlowObjective(shift=1.0).timesteps(8), linear.float())
    with pytest.raises(ValueError, match="needs size"):
        flow.timesteps(8)
    with pytest.raises(ValueError, match="needs size"):
        flow.sample_time(4)


def test_prior_has_sigma_t_max_scale(objective):
    x = objective.prior((200, 4, 50), generator=torch.Generator().manual_seed(0), size=200)
    _, sigma = objective.alpha_sigma(torch.tensor([objective.t_max]))
    assert x.shape == (200, 4, 50) and x.dtype == torch.float32
    assert x.std().item() == pytest.approx(sigma.item(), rel=0.02)
    again = objective.prior((200, 4, 50), generator=torch.Generator().manual_seed(0), size=200)
    assert torch.equal(x, again)


def test_loss_is_masked_weighted_mse(objective):
    prediction, target = _batch(1)
    weight = torch.tensor([1.0, 2.0, 0.5, 0.0, 3.0])
    full = objective.loss(prediction, target, weight)
    manual = (weight[:, None, None] * (prediction - target) ** 2).mean()
    torch.testing.assert_close(full, manual)
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[:, 4:] = False
    changed = prediction.clone()
    changed[..., 4:] += 100.0  # padding must not count
    masked = objective.loss(changed, target, weight, mask)
    expect = (weight[:, None, None] * (prediction - target)[..., :4] ** 2).mean()
    torch.testing.assert_close(masked, expect)
    assert masked.dtype == torch.float32 and masked.ndim == 0
    with pytest.raises(ValueError, match="mask"):
        objective.loss(prediction, target, weight, mask[:, :3])


def test_objectives_pickle_and_compare_by_params(objective):
    again = pickle.loads(pickle.dumps(objective))
    assert again == objective and hash(again) == hash(objective)
    assert repr(again) == repr(objective)
    assert EDMObjective(sigma_data=1.0) != EDMObjective()


@pytest.mark.parametrize(("factory", "params", "match"), [
    (EDMObjective, {"sigma_data": 0.0}, "sigma_data"),
    (EDMObjective, {"sigma_min": 10.0, "sigma_max": 1.0}, "sigma_max"),
    (RectifiedFlowObjective, {"shift": 0.0}, "shift"),
    (RectifiedFlowObjective, {"shift": "big"}, "shift"),
    (RectifiedFlowObjective, {"time_distribution": "beta"}, "time_distribution"),
    (RectifiedFlowObjective, {"logit_std": -1.0}, "logit_std"),
])
def test_bad_params_are_refused(factory, params, match):
    with pytest.raises(ValueError, match=match):
        factory(**params)
