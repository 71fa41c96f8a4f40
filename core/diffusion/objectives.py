"""Diffusion and flow objectives: one noising path, its training target and its time grid.

Every objective describes ``x_t = alpha(t) * x0 + sigma(t) * noise`` in its own *native
time* ``t`` (``(batch,)``, ``t = 0`` clean) and says what the network sees and predicts:

- :class:`EDMObjective` (``core.edm``, Karras et al. 2022): ``t = sigma``, ``alpha = 1``,
  EDM preconditioning;
- :class:`VDiffusionObjective` (``core.v_diffusion``, Salimans & Ho 2022): ``alpha =
  cos(t pi / 2)``, ``sigma = sin(t pi / 2)``, ``v`` prediction;
- :class:`RectifiedFlowObjective` (``core.rectified_flow``): ``alpha = 1 - t``, ``sigma =
  t``, velocity prediction, optional resolution-dependent time shift.

Training: ``net_input, net_time, target, weight = objective.training_example(x0, noise, t)``
and ``objective.loss(net(net_input, net_time, cond), target, weight, mask)``. Sampling:
``objective.denoised(net(*objective.net_inputs(x_t, t), cond), x_t, t)`` is the data
prediction every sampler in :mod:`audio_core.diffusion.samplers` integrates.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

Pair = tuple[Tensor, Tensor]


def per_example(values: Tensor, like: Tensor) -> Tensor:
    """``(batch,)`` -> ``(batch, 1, ..., 1)`` broadcastable against ``like``, in fp32."""
    return rearrange(values.float(), "b -> b" + " 1" * (like.ndim - 1))


def draw(kind: str, shape: tuple[int, ...], generator: torch.Generator | None,
         device: Any) -> Tensor:
    """``torch.randn``/``torch.rand`` (``kind`` ``"normal"``/``"uniform"``) drawn on the
    generator's device (so a CPU generator gives the same numbers everywhere), fp32, moved to
    ``device``."""
    source = generator.device if generator is not None else device
    fn = torch.randn if kind == "normal" else torch.rand
    return fn(shape, generator=generator, device=source, dtype=torch.float32).to(device)


def masked_weighted_mse(prediction: Tensor, target: Tensor, weight: Tensor,
                        mask: Tensor | None = None) -> Tensor:
    """``mean(weight * (prediction - target)^2)`` over real elements, fp32 scalar.

    ``prediction``/``target`` ``(batch, dim, frames)``, ``weight`` ``(batch,)``, ``mask``
    bool ``(batch, frames)`` (True = real), broadcast over ``dim``.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target "
                         f"{tuple(target.shape)} must have the same shape")
    error = (prediction.float() - target.float()).pow(2) * per_example(weight, prediction)
    if mask is None:
        return error.mean()
    expected = (prediction.shape[0], prediction.shape[-1])
    if mask.shape != expected:
        raise ValueError(f"mask must be (batch, frames) = {expected}, got {tuple(mask.shape)}")
    real = rearrange(mask.to(error.device, torch.float32), "b f -> b 1 f").expand_as(error)
    return (error * real).sum() / real.sum().clamp_min(1.0)


class Objective(ABC):
    """A noising path ``x_t = alpha(t) x0 + sigma(t) noise`` plus what the network predicts.

    Plain python (no parameters, picklable); ``__init__`` arguments are config params.
    Times are float tensors ``(batch,)``; ``t_max`` is where sampling starts.
    """

    t_max: float

    # -- the path ---------------------------------------------------------------------
    @abstractmethod
    def alpha_sigma(self, t: Tensor) -> Pair:
        """``(alpha(t), sigma(t))``, each fp32 shaped like ``t``."""

    @abstractmethod
    def alpha_sigma_derivative(self, t: Tensor) -> Pair:
        """``(d alpha / dt, d sigma / dt)``, analytic, each fp32 shaped like ``t``."""

    @abstractmethod
    def sample_time(self, batch: int, *, size: int | None = None,
                    generator: torch.Generator | None = None, device: Any = None) -> Tensor:
        """Training times ``(batch,)`` fp32; ``size`` = elements per example (dim * frames)."""

    @abstractmethod
    def timesteps(self, steps: int, *, size: int | None = None) -> Tensor:
        """Sampling grid ``(steps + 1,)`` fp32, strictly decreasing from ``t_max`` to 0."""

    # -- the parameterisation ---------------------------------------------------------
    @abstractmethod
    def net_inputs(self, x_t: Tensor, t: Tensor) -> Pair:
        """``(net_input, net_time)``: what the network receives for ``x_t`` ``(batch, dim,
        frames)`` at times ``t`` ``(batch,)``; ``net_input`` keeps ``x_t``'s dtype."""

    @abstractmethod
    def denoised(self, prediction: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """The data prediction ``x0_hat`` (fp32, shaped like ``x_t``) from the network's
        ``prediction``."""

    @abstractmethod
    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """What the network should output for ``x_t`` built from ``x0`` and ``noise`` (fp32)."""

    def weight(self, t: Tensor) -> Tensor:
        """Per-example loss weight ``(batch,)`` fp32 (1 unless an objective says otherwise)."""
        return torch.ones(t.shape, dtype=torch.float32, device=t.device)

    # -- derived ----------------------------------------------------------------------
    def noised(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """``x_t = alpha(t) x0 + sigma(t) noise``, fp32 ``(batch, dim, frames)``."""
        alpha, sigma = self.alpha_sigma(t)
        return per_example(alpha, x0) * x0.float() + per_example(sigma, x0) * noise.float()

    def training_example(self, x0: Tensor, noise: Tensor, t: Tensor
                         ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(net_input, net_time, target, weight)`` for clean ``x0`` and ``noise`` ``(batch,
        dim, frames)`` at times ``t`` ``(batch,)``: the loss is ``mean(weight * (net(
        net_input, net_time) - target)^2)``. ``net_input`` has ``x0``'s dtype, the rest fp32.
        """
        if noise.shape != x0.shape or t.shape != x0.shape[:1]:
            raise ValueError(f"need noise shaped like x0 {tuple(x0.shape)} and t (batch,) = "
                             f"{tuple(x0.shape[:1])}; got noise {tuple(noise.shape)}, "
                             f"t {tuple(t.shape)}")
        x_t = self.noised(x0, noise, t).to(x0.dtype)
        net_input, net_time = self.net_inputs(x_t, t)
        return net_input, net_time, self.target(x0, noise, t), self.weight(t)

    def loss(self, prediction: Tensor, target: Tensor, weight: Tensor,
             mask: Tensor | None = None) -> Tensor:
        """Masked weighted MSE, fp32 scalar; ``mask`` bool ``(batch, frames)``, True = real."""
        return masked_weighted_mse(prediction, target, weight, mask)

    def prior(self, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
              device: Any = None, size: int | None = None) -> Tensor:
        """``x_T = sigma(t_max) * N(0, I)`` of ``shape`` ``(batch, dim, frames)``, fp32."""
        _, sigma = self.alpha_sigma(torch.tensor([self.t_max]))
        return sigma.item() * draw("normal", tuple(shape), generator, device)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(vars(self).items()))))


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


# -- EDM -----------------------------------------------------------------------------------
class EDMObjective(Objective):
    """Karras et al. 2022: ``t = sigma``, ``alpha = 1``, ``x_t = x0 + sigma * noise``.

    Training ``log(sigma) ~ N(p_mean, p_std^2)``. The network sees ``c_in * x_t`` and
    ``c_noise = log(sigma) / 4``; ``x0_hat = c_skip x_t + c_out F``; the target ``(x0 -
    c_skip x_t) / c_out`` with weight 1 equals EDM's ``lambda(sigma) ||D - x0||^2``.
    Sampling grid: Karras' ``rho`` spacing from ``sigma_max`` to ``sigma_min``, then 0.
    """

    def __init__(self, sigma_data: float = 0.5, p_mean: float = -1.2, p_std: float = 1.2,
                 sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> None:
        _positive(sigma_data=sigma_data, p_std=p_std, sigma_min=sigma_min, rho=rho)
        if not sigma_max > sigma_min:
            raise ValueError(f"sigma_max must be > sigma_min, got sigma_max={sigma_max}, "
                             f"sigma_min={sigma_min}")
        self.sigma_data, self.p_mean, self.p_std = float(sigma_data), float(p_mean), float(p_std)
        self.sigma_min, self.sigma_max, self.rho = float(sigma_min), float(sigma_max), float(rho)

    @property
    def t_max(self) -> float:  # type: ignore[override]
        return self.sigma_max

    def preconditioning(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(c_skip, c_out, c_in, c_noise)`` fp32 shaped like ``sigma``:
        ``sd^2 / (s^2 + sd^2)``, ``s sd / sqrt(s^2 + sd^2)``, ``1 / sqrt(s^2 + sd^2)``,
        ``log(s) / 4``."""
        s, sd = sigma.double(), self.sigma_data
        total = s.pow(2) + sd**2
        out = (sd**2 / total, s * sd * total.rsqrt(), total.rsqrt(), s.log() / 4)
        return tuple(c.float() for c in out)  # type: ignore[return-value]

    def alpha_sigma(self, t: Tensor) -> Pair:
        return torch.ones_like(t, dtype=torch.float32), t.float()

    def alpha_sigma_derivative(self, t: Tensor) -> Pair:
        return torch.zeros_like(t, dtype=torch.float32), torch.ones_like(t, dtype=torch.float32)

    def sample_time(self, batch: int, *, size: int | None = None,
                    generator: torch.Generator | None = None, device: Any = None) -> Tensor:
        return (self.p_mean + self.p_std * draw("normal", (batch,), generator, device)).exp()

    def timesteps(self, steps: int, *, size: int | None = None) -> Tensor:
        _check_steps(steps)
        ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        sigmas = (hi + ramp * (lo - hi)) ** self.rho
        return torch.cat([sigmas, sigmas.new_zeros(1)]).float()

    def net_inputs(self, x_t: Tensor, t: Tensor) -> Pair:
        _, _, c_in, c_noise = self.preconditioning(t)
        return (per_example(c_in, x_t) * x_t.float()).to(x_t.dtype), c_noise

    def denoised(self, prediction: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        c_skip, c_out, _, _ = self.preconditioning(t)
        return per_example(c_skip, x_t) * x_t.float() + per_example(c_out, x_t) * prediction.float()

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        c_skip, c_out, _, _ = self.preconditioning(t)
        x_t = self.noised(x0, noise, t)
        return (x0.float() - per_example(c_skip, x0) * x_t) / per_example(c_out, x0)


# -- v-diffusion ---------------------------------------------------------------------------
class VDiffusionObjective(Objective):
    """Salimans & Ho 2022 (audio-diffusion-pytorch's VDiffusion): ``t ~ U[0, 1)``,
    ``alpha = cos(t pi / 2)``, ``sigma = sin(t pi / 2)``; the network sees ``(x_t, t)`` and
    predicts ``v = alpha noise - sigma x0``; ``x0_hat = alpha x_t - sigma v_hat``. Grid:
    linear from 1 to 0. ``alpha(1) = 0`` and ``sigma(0) = 0`` exactly."""

    t_max = 1.0

    def alpha_sigma(self, t: Tensor) -> Pair:
        t = t.double()
        # sin((1 - t) pi / 2) == cos(t pi / 2), but is exactly 0 at t = 1.
        return (torch.sin((1 - t) * math.pi / 2).float(), torch.sin(t * math.pi / 2).float())

    def alpha_sigma_derivative(self, t: Tensor) -> Pair:
        t = t.double()
        return ((-math.pi / 2 * torch.sin(t * math.pi / 2)).float(),
                (math.pi / 2 * torch.sin((1 - t) * math.pi / 2)).float())

    def sample_time(self, batch: int, *, size: int | None = None,
                    generator: torch.Generator | None = None, device: Any = None) -> Tensor:
        return draw("uniform", (batch,), generator, device)

    def timesteps(self, steps: int, *, size: int | None = None) -> Tensor:
        _check_steps(steps)
        return torch.linspace(1, 0, steps + 1, dtype=torch.float64).float()

    def net_inputs(self, x_t: Tensor, t: Tensor) -> Pair:
        return x_t, t.float()

    def denoised(self, prediction: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = self.alpha_sigma(t)
        return per_example(alpha, x_t) * x_t.float() - per_example(sigma, x_t) * prediction.float()

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        alpha, sigma = self.alpha_sigma(t)
        return per_example(alpha, x0) * noise.float() - per_example(sigma, x0) * x0.float()


# -- rectified flow ------------------------------------------------------------------------
class RectifiedFlowObjective(Objective):
    """Rectified flow / flow matching: ``alpha = 1 - t``, ``sigma = t``; the network sees
    ``(x_t, t)`` and predicts the velocity ``noise - x0``; ``x0_hat = x_t - t v_hat``.

    Training times: ``time_distribution="logit_normal"`` (``sigmoid(N(logit_mean,
    logit_std^2))``, SD3) or ``"uniform"``. Both training times and the sampling grid
    (linear 1 -> 0) go through the shift ``t' = s t / (1 + (s - 1) t)``; ``shift`` is a
    number > 0 (1 = none) or ``"auto"`` = ``sqrt(size / shift_base)`` with ``size`` the
    elements per example (the SD3/RAE resolution-dependent shift).
    """

    t_max = 1.0
    time_distributions = ("logit_normal", "uniform")

    def __init__(self, time_distribution: str = "logit_normal", logit_mean: float = 0.0,
                 logit_std: float = 1.0, shift: float | str = 1.0,
                 shift_base: int = 4096) -> None:
        if time_distribution not in self.time_distributions:
            raise ValueError(f"time_distribution must be one of {list(self.time_distributions)}"
                             f", got {time_distribution!r}")
        if shift != "auto" and (isinstance(shift, str) or not shift > 0):
            raise ValueError(f"shift must be a number > 0 or 'auto', got {shift!r}")
        _positive(logit_std=logit_std, shift_base=shift_base)
        self.time_distribution = time_distribution
        self.logit_mean, self.logit_std = float(logit_mean), float(logit_std)
        self.shift = shift if shift == "auto" else float(shift)
        self.shift_base = int(shift_base)

    def shift_for(self, size: int | None) -> float:
        """The shift ``s`` for examples of ``size`` elements (``"auto"`` needs ``size``)."""
        if self.shift != "auto":
            return float(self.shift)
        if size is None or size < 1:
            raise ValueError("rectified_flow with shift='auto' needs size (elements per "
                             f"example, dim * frames) >= 1, got {size!r}")
        return math.sqrt(size / self.shift_base)

    def shifted(self, t: Tensor, size: int | None) -> Tensor:
        """``s t / (1 + (s - 1) t)`` (fp32): more time at high noise for ``s > 1``."""
        s = self.shift_for(size)
        t = t.double()
        return (s * t / (1 + (s - 1) * t)).float()

    def alpha_sigma(self, t: Tensor) -> Pair:
        t = t.double()
        return (1 - t).float(), t.float()

    def alpha_sigma_derivative(self, t: Tensor) -> Pair:
        return (torch.full_like(t, -1.0, dtype=torch.float32),
                torch.ones_like(t, dtype=torch.float32))

    def sample_time(self, batch: int, *, size: int | None = None,
                    generator: torch.Generator | None = None, device: Any = None) -> Tensor:
        if self.time_distribution == "uniform":
            t = draw("uniform", (batch,), generator, device)
        else:
            t = torch.sigmoid(self.logit_mean
                              + self.logit_std * draw("normal", (batch,), generator, device))
        return self.shifted(t, size)

    def timesteps(self, steps: int, *, size: int | None = None) -> Tensor:
        _check_steps(steps)
        return self.shifted(torch.linspace(1, 0, steps + 1, dtype=torch.float64), size)

    def net_inputs(self, x_t: Tensor, t: Tensor) -> Pair:
        return x_t, t.float()

    def denoised(self, prediction: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        return x_t.float() - per_example(t, x_t) * prediction.float()

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        return noise.float() - x0.float()
