"""Shared fixtures for the diffusion tests.

Any test taking an ``objective`` argument runs once per objective (EDM, v-diffusion,
rectified flow with and without a shift). ``gaussian`` gives the exact denoiser of data
``N(mu, s^2)`` per element and the exact endpoint of the probability-flow ODE.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from audio_core.diffusion.objectives import (
    EDMObjective,
    Objective,
    RectifiedFlowObjective,
    VDiffusionObjective,
)


def all_objectives() -> dict[str, Objective]:
    return {"edm": EDMObjective(), "v_diffusion": VDiffusionObjective(),
            "rectified_flow": RectifiedFlowObjective(),
            "rectified_flow_shifted": RectifiedFlowObjective(shift=3.0)}


def coefficients(objective: Objective, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    alpha, sigma = objective.alpha_sigma(t)
    return (alpha.double().reshape(-1, *[1] * (like.ndim - 1)),
            sigma.double().reshape(-1, *[1] * (like.ndim - 1)))


@dataclass
class Gaussian:
    """Data ``x0 ~ N(mu, s^2)``, independent per element."""

    mu: float = 1.5
    s: float = 0.3

    def denoiser(self, objective: Objective):
        """``E[x0 | x_t] = mu + a s^2 / (a^2 s^2 + sigma^2) (x - a mu)``."""
        mu, s = self.mu, self.s

        def denoise(x: Tensor, t: Tensor) -> Tensor:
            a, sig = coefficients(objective, t, x)
            gain = a * s**2 / (a**2 * s**2 + sig**2)
            return (mu + gain * (x.double() - a * mu)).float()

        return denoise

    def exact(self, objective: Objective, x_T: Tensor, t_max: float) -> Tensor:
        """The probability-flow ODE's endpoint from ``x_T`` at ``t_max``: the standardised
        value ``(x - a mu) / sqrt(a^2 s^2 + sigma^2)`` is constant along the flow."""
        a, sig = coefficients(objective, torch.full(x_T.shape[:1], t_max), x_T)
        z = (x_T.double() - a * self.mu) / (a**2 * self.s**2 + sig**2).sqrt()
        return (self.mu + self.s * z).float()


@pytest.fixture
def gaussian() -> Gaussian:
    return Gaussian()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``objective`` over every objective unless the test chose its own."""
    chosen = any("objective" in str(m.args[0]) for m in metafunc.definition.iter_markers(
        "parametrize"))
    if "objective" in metafunc.fixturenames and not chosen:
        objectives = all_objectives()
        metafunc.parametrize("objective", list(objectives.values()), ids=list(objectives))
