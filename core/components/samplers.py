"""EDM (Karras et al. 2022) preconditioning and the Euler/Heun sampler (``core.euler``).

A *network* is any module ``net(x, sigma)`` (or ``net(x, sigma, cond)``) with ``x``
``(batch, dim, frames)`` and ``sigma`` ``(batch,)``; it receives the noise level itself and
embeds it as it likes (``core.frame_denoiser`` embeds ``log(sigma)``, i.e. EDM's
``c_noise = log(sigma) / 4`` up to its learned scale). :class:`EDMDenoiser` wraps it into
the denoiser ``D(x, sigma) = c_skip * x + c_out * net(c_in * x, sigma)`` that estimates the
clean sample. A sampler turns a denoiser plus noise (plus conditioning and a guidance
scale) into a latent.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch import Tensor, nn

#: ``denoiser(x, sigma, cond)`` -> estimate of the clean sample, shaped like ``x``.
Denoiser = Callable[[Tensor, Tensor, Tensor | None], Tensor]


def edm_preconditioning(sigma: Tensor, sigma_data: float = 0.5
                        ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(c_skip, c_out, c_in, c_noise)`` for noise levels ``sigma`` (any shape, same out).

    ``c_skip = sd^2 / (s^2 + sd^2)``, ``c_out = s * sd / sqrt(s^2 + sd^2)``,
    ``c_in = 1 / sqrt(s^2 + sd^2)``, ``c_noise = log(s) / 4``.
    """
    sigma = sigma.float()
    total = sigma.pow(2) + sigma_data**2
    return (sigma_data**2 / total, sigma * sigma_data * total.rsqrt(), total.rsqrt(),
            sigma.log() / 4)


def edm_loss_weight(sigma: Tensor, sigma_data: float = 0.5) -> Tensor:
    """EDM's ``lambda(sigma) = (s^2 + sd^2) / (s * sd)^2``: unit loss scale at every ``sigma``."""
    sigma = sigma.float()
    return (sigma.pow(2) + sigma_data**2) / (sigma * sigma_data).pow(2)


def per_example(values: Tensor, like: Tensor) -> Tensor:
    """``(batch,)`` -> ``(batch, 1, ..., 1)`` broadcastable against ``like``."""
    return rearrange(values, "b -> b" + " 1" * (like.ndim - 1))


class EDMDenoiser(nn.Module):
    """``D(x, sigma, cond=None)``: ``x`` ``(batch, dim, frames)``, ``sigma`` ``(batch,)`` ->
    clean-sample estimate ``(batch, dim, frames)`` through EDM preconditioning of ``net``."""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5) -> None:
        super().__init__()
        if sigma_data <= 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.net, self.sigma_data = net, float(sigma_data)

    def forward(self, x: Tensor, sigma: Tensor, cond: Tensor | None = None) -> Tensor:
        c_skip, c_out, c_in, _ = (per_example(c, x) for c in
                                  edm_preconditioning(sigma, self.sigma_data))
        inp = (c_in * x.float()).to(x.dtype)
        out = self.net(inp, sigma) if cond is None else self.net(inp, sigma, cond)
        return (c_skip * x.float() + c_out * out.float()).to(x.dtype)


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                  rho: float = 7.0) -> Tensor:
    """``steps + 1`` noise levels: ``steps`` from ``sigma_max`` down to ``sigma_min`` spaced
    uniformly in ``sigma ** (1 / rho)``, then a final ``0``."""
    if steps < 1 or not 0 < sigma_min < sigma_max:
        raise ValueError(f"need steps >= 1 and 0 < sigma_min < sigma_max; got steps={steps}, "
                         f"sigma_min={sigma_min}, sigma_max={sigma_max}")
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


class EulerSampler:
    """Karras' deterministic sampler: Euler steps along the probability-flow ODE, with
    Heun's second-order correction (``heun=True``) on every step but the last.

    ``sampler(denoiser, noise, cond=None, guidance_scale=1.0)``: ``noise`` is standard
    normal ``(batch, dim, frames)``; returns the sample, same shape. With ``cond`` and
    ``guidance_scale != 1`` it applies classifier-free guidance
    ``D(x, s) + w * (D(x, s, cond) - D(x, s))``.
    """

    def __init__(self, steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 rho: float = 7.0, heun: bool = True) -> None:
        self.sigmas = karras_sigmas(steps, sigma_min, sigma_max, rho)
        self.heun = heun

    def guided(self, denoiser: Denoiser, x: Tensor, sigma: Tensor, cond: Tensor | None,
               guidance_scale: float) -> Tensor:
        """The (guided) clean-sample estimate at noise level ``sigma`` (a scalar tensor)."""
        s = sigma.to(x.device).expand(x.shape[0])
        if cond is None:
            return denoiser(x, s, None).float()
        conditional = denoiser(x, s, cond).float()
        if guidance_scale == 1.0:
            return conditional
        unconditional = denoiser(x, s, None).float()
        return unconditional + guidance_scale * (conditional - unconditional)

    @torch.no_grad()
    def __call__(self, denoiser: Denoiser, noise: Tensor, cond: Tensor | None = None,
                 guidance_scale: float = 1.0) -> Tensor:
        x = noise.float() * self.sigmas[0]
        for s, s_next in zip(self.sigmas[:-1], self.sigmas[1:], strict=True):
            slope = (x - self.guided(denoiser, x.to(noise.dtype), s, cond, guidance_scale)) / s
            x_next = x + (s_next - s) * slope
            if self.heun and s_next > 0:
                est = self.guided(denoiser, x_next.to(noise.dtype), s_next, cond, guidance_scale)
                x_next = x + (s_next - s) * 0.5 * (slope + (x_next - est) / s_next)
            x = x_next
        return x.to(noise.dtype)
