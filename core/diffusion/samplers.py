"""Samplers: integrate an objective's path from ``x_T`` to ``x_0`` with a data prediction.

``sampler(denoise, x_T, grid, objective)`` where ``denoise(x_t, t) -> x0_hat`` (already
guided, ``t`` ``(batch,)``) and ``grid = objective.timesteps(steps)``. Every sampler is
written in terms of ``alpha(t)``/``sigma(t)`` (and their derivatives), so each works with
each objective, including ``alpha = 0`` at ``t_max`` (flow, v) and ``sigma = 0`` at the end.
Arithmetic is fp32 (scalar coefficients in fp64); the result has ``x_T``'s dtype.

- :class:`DDIMSampler` (``core.ddim``): ``x_s = alpha_s x0_hat + sigma_s eps_hat``, plus
  DDIM's stochastic term for ``eta > 0``;
- :class:`EulerSampler` (``core.euler``): Euler on ``dx/dt = alpha' x0_hat + sigma' eps_hat``;
- :class:`HeunSampler` (``core.heun``): Heun's second order on the same ODE;
- :class:`DPMSolverPP2MSampler` (``core.dpmpp_2m``): DPM-Solver++(2M), multistep in
  ``lambda = log(alpha / sigma)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from audio_core.diffusion.objectives import Objective, draw

#: ``denoise(x_t, t)`` -> ``x0_hat``: ``x_t`` ``(batch, dim, frames)`` fp32, ``t`` ``(batch,)``.
DenoiseFn = Callable[[Tensor, Tensor], Tensor]
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class SamplingPath:
    """An objective's path sampled on a grid: times and coefficients per grid point."""

    times: Tensor  # (steps + 1,) fp32 on the sample's device
    t: list[float]
    alpha: list[float]
    sigma: list[float]
    d_alpha: list[float]
    d_sigma: list[float]

    @classmethod
    def of(cls, grid: Tensor, objective: Objective, device: Any) -> SamplingPath:
        if grid.ndim != 1 or grid.numel() < 2:
            raise ValueError(f"grid must be 1-D with at least 2 times, got shape "
                             f"{tuple(grid.shape)}")
        grid = grid.detach().float().cpu()
        if not bool((grid[:-1] > grid[1:]).all()) or grid[-1].item() != 0.0:
            raise ValueError(f"grid must decrease strictly and end at exactly 0, got "
                             f"{grid.tolist()}")
        alpha, sigma = objective.alpha_sigma(grid)
        d_alpha, d_sigma = objective.alpha_sigma_derivative(grid)
        as_list = [v.double().tolist() for v in (grid, alpha, sigma, d_alpha, d_sigma)]
        return cls(grid.to(device), *as_list)

    @property
    def steps(self) -> int:
        return len(self.t) - 1


class Sampler(ABC):
    """Turns a data prediction ``denoise(x_t, t)`` plus ``x_T`` into a sample.

    Subclasses implement :meth:`step` from grid point ``i`` to ``i + 1``; ``state`` is a
    dict private to one call (for multistep methods).
    """

    @torch.no_grad()
    def __call__(self, denoise: DenoiseFn, x_T: Tensor, grid: Tensor, objective: Objective,
                 *, generator: torch.Generator | None = None,
                 progress: ProgressFn | None = None) -> Tensor:
        """``x_0`` shaped and typed like ``x_T`` ``(batch, dim, frames)``; ``progress(i,
        total)`` after step ``i`` (1-based) of ``total``."""
        path = SamplingPath.of(grid, objective, x_T.device)
        x, state = x_T.float(), {}
        for i in range(path.steps):
            x = self.step(denoise, x, path, i, state, generator)
            if progress is not None:
                progress(i + 1, path.steps)
        return x.to(x_T.dtype)

    @abstractmethod
    def step(self, denoise: DenoiseFn, x: Tensor, path: SamplingPath, i: int, state: dict[str, Any],
             generator: torch.Generator | None) -> Tensor:
        """``x`` at ``path.t[i]`` -> ``x`` at ``path.t[i + 1]`` (fp32)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


def data_prediction(denoise: DenoiseFn, x: Tensor, path: SamplingPath, i: int) -> Tensor:
    """``x0_hat`` at grid point ``i`` (fp32)."""
    t = path.times[i].expand(x.shape[0])
    return denoise(x, t).float()


def noise_prediction(x: Tensor, x0: Tensor, path: SamplingPath, i: int) -> Tensor:
    """``eps_hat = (x_t - alpha_t x0_hat) / sigma_t`` at grid point ``i`` (``sigma_t > 0``)."""
    return (x - path.alpha[i] * x0) / path.sigma[i]


def velocity(x: Tensor, x0: Tensor, path: SamplingPath, i: int) -> Tensor:
    """The native ODE's ``dx/dt = alpha'(t) x0_hat + sigma'(t) eps_hat`` at grid point ``i``."""
    return path.d_alpha[i] * x0 + path.d_sigma[i] * noise_prediction(x, x0, path, i)


class DDIMSampler(Sampler):
    """DDIM (Song et al. 2021) for any path: ``x_s = alpha_s x0_hat + sqrt(sigma_s^2 - c^2)
    eps_hat + c z`` with ``c = eta sigma_s sqrt(1 - SNR_t / SNR_s)`` (``SNR = alpha^2 /
    sigma^2``; ``eta = 0`` deterministic, ``eta = 1`` the DDPM posterior), ``z`` drawn from
    ``generator``."""

    def __init__(self, eta: float = 0.0) -> None:
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"ddim eta must be in [0, 1], got {eta!r}")
        self.eta = float(eta)

    def step(self, denoise, x, path, i, state, generator):
        x0 = data_prediction(denoise, x, path, i)
        eps = noise_prediction(x, x0, path, i)
        alpha_s, sigma_s = path.alpha[i + 1], path.sigma[i + 1]
        if self.eta == 0.0 or sigma_s == 0.0:
            return alpha_s * x0 + sigma_s * eps
        snr_ratio = (path.alpha[i] * sigma_s / (alpha_s * path.sigma[i])) ** 2
        c = self.eta * sigma_s * math.sqrt(max(0.0, 1.0 - snr_ratio))
        z = draw("normal", tuple(x.shape), generator, x.device)
        return alpha_s * x0 + math.sqrt(max(0.0, sigma_s**2 - c**2)) * eps + c * z


class EulerSampler(Sampler):
    """Euler steps on ``dx/dt = alpha'(t) x0_hat + sigma'(t) eps_hat`` (for EDM this is
    Karras' Euler sampler; for EDM and rectified flow it equals DDIM)."""

    def step(self, denoise, x, path, i, state, generator):
        x0 = data_prediction(denoise, x, path, i)
        return x + (path.t[i + 1] - path.t[i]) * velocity(x, x0, path, i)


class HeunSampler(Sampler):
    """Heun's second-order method on the native ODE (Karras et al. 2022, Alg. 1): an Euler
    predictor, then the average of both slopes; the last step (into ``sigma = 0``) is Euler.
    Two network calls per step except the last."""

    def step(self, denoise, x, path, i, state, generator):
        dt = path.t[i + 1] - path.t[i]
        slope = velocity(x, data_prediction(denoise, x, path, i), path, i)
        predicted = x + dt * slope
        if path.sigma[i + 1] == 0.0:
            return predicted
        slope_next = velocity(predicted, data_prediction(denoise, predicted, path, i + 1),
                              path, i + 1)
        return x + dt * 0.5 * (slope + slope_next)


def log_snr(alpha: float, sigma: float) -> float | None:
    """``lambda = log(alpha / sigma)``, or ``None`` where it is infinite."""
    return math.log(alpha / sigma) if alpha > 0.0 and sigma > 0.0 else None


class DPMSolverPP2MSampler(Sampler):
    """DPM-Solver++(2M) (Lu et al. 2022), data prediction, multistep in ``lambda = log(alpha
    / sigma)``::

        x_s = (sigma_s / sigma_t) x_t + alpha_s (1 - exp(-h)) D,   h = lambda_s - lambda_t
        D = (1 + 1 / (2 r)) x0_hat_t - 1 / (2 r) x0_hat_prev,       r = h_prev / h

    ``exp(-h)`` is the ratio ``alpha_t sigma_s / (sigma_t alpha_s)``, so no infinity appears.
    The first step, any step from or after ``lambda = -inf`` (``alpha = 0``) and the last
    step into ``sigma = 0`` are first order (``D = x0_hat_t``, which is DDIM).
    """

    def step(self, denoise, x, path, i, state, generator):
        x0 = data_prediction(denoise, x, path, i)
        alpha_t, sigma_t = path.alpha[i], path.sigma[i]
        alpha_s, sigma_s = path.alpha[i + 1], path.sigma[i + 1]
        lam_t, lam_s = log_snr(alpha_t, sigma_t), log_snr(alpha_s, sigma_s)
        previous = state.get("previous")
        direction = x0
        if previous is not None and lam_t is not None and lam_s is not None \
                and previous[1] is not None:
            x0_prev, lam_prev = previous
            half_inv_r = 0.5 * (lam_s - lam_t) / (lam_t - lam_prev)
            direction = (1 + half_inv_r) * x0 - half_inv_r * x0_prev
        state["previous"] = (x0, lam_t)
        exp_neg_h = alpha_t * sigma_s / (sigma_t * alpha_s)
        return (sigma_s / sigma_t) * x + alpha_s * (1.0 - exp_neg_h) * direction
