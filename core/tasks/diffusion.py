"""EDM-style (Karras et al. 2022) diffusion on waveforms or on a frozen encoder's latents.

The "denoiser" role is an :class:`~audio_core.components.samplers.EDMDenoiser` around a
network configured as a decoder-kind component (task param ``denoiser: {name, params}``,
e.g. ``core.frame_denoiser``). The target ``x0`` ``(batch, dim, frames)`` is the latent of
a frozen encoder (task param ``encoder: {name, params}``, kept outside every engine as in
:mod:`~audio_core.tasks.frozen_encoder`) or, without one, the audio ``(batch, channels,
time)``; either is multiplied by ``target_scale`` (aim for a standard deviation near
``sigma_data``). Per micro-batch::

    sigma ~ exp(N(p_mean, p_std^2))                 (batch,)
    loss  = mean(lambda(sigma) * (D(x0 + sigma * n, sigma) - x0)^2)

with ``lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2``. Generation uses
``model.sampler`` (default ``core.euler`` settings). EMA weights come from the trainer
(``train.ema_decay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from audio_core.components.losses import masked_mean
from audio_core.components.samplers import (
    EDMDenoiser,
    EulerSampler,
    edm_loss_weight,
    per_example,
)
from audio_core.config.schema import ComponentConfig
from audio_core.errors import ConfigError
from audio_core.tasks.base import Task
from audio_core.tasks.frozen_encoder import build_frozen


def component_ref(value: Any, path: str) -> ComponentConfig:
    """A ``{name, params}`` mapping from task params as a :class:`ComponentConfig`."""
    if isinstance(value, ComponentConfig):
        return value
    if not isinstance(value, Mapping) or not isinstance(value.get("name"), str) or \
            set(value) - {"name", "params"}:
        raise ConfigError(f"{path} must be a mapping {{name: <plugin.component>, params: "
                          f"{{...}}}}, got {value!r}", path)
    return ComponentConfig(name=value["name"], params=dict(value.get("params") or {}))


def sample_sigmas(batch: int, p_mean: float, p_std: float, device: Any = "cpu") -> Tensor:
    """Training noise levels ``(batch,)``: ``log(sigma) ~ N(p_mean, p_std^2)``."""
    return (p_mean + p_std * torch.randn(batch, device=device)).exp()


def edm_loss(denoiser: Any, x0: Tensor, *, sigma_data: float = 0.5, p_mean: float = -1.2,
             p_std: float = 1.2, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """EDM training loss of ``denoiser(x, sigma)`` on clean ``x0`` ``(batch, dim, frames)``.

    ``mask`` ``(batch, frames)`` excludes padding. Returns the fp32 scalar loss and the
    sampled ``sigma`` ``(batch,)``.
    """
    sigma = sample_sigmas(x0.shape[0], p_mean, p_std, x0.device)
    noisy = x0.float() + per_example(sigma, x0) * torch.randn_like(x0, dtype=torch.float32)
    denoised = denoiser(noisy.to(x0.dtype), sigma)
    error = (denoised.float() - x0.float()).pow(2) * per_example(
        edm_loss_weight(sigma, sigma_data), x0)
    return masked_mean(error, mask), sigma


class DiffusionTask(Task):
    """Trains an EDM denoiser; see the module docstring.

    Params: ``denoiser`` (required), ``encoder`` (optional), ``sigma_data`` (0.5),
    ``p_mean`` (-1.2), ``p_std`` (1.2), ``target_scale`` (1.0).
    """

    roles = ("denoiser",)

    def __init__(self, *, cfg: Any, registry: Any, denoiser: Any = None, encoder: Any = None,
                 sigma_data: float = 0.5, p_mean: float = -1.2, p_std: float = 1.2,
                 target_scale: float = 1.0) -> None:
        super().__init__(cfg=cfg, registry=registry)
        if denoiser is None:
            raise ConfigError("the diffusion task needs task.params.denoiser "
                              "({name, params} of a decoder-kind network)",
                              "task.params.denoiser")
        if sigma_data <= 0 or p_std <= 0:
            raise ConfigError(f"task.params.sigma_data and p_std must be > 0, got "
                              f"{sigma_data} and {p_std}", "task.params")
        self.denoiser_ref = component_ref(denoiser, "task.params.denoiser")
        self.encoder_ref = None if encoder is None else component_ref(encoder,
                                                                      "task.params.encoder")
        self.sigma_data, self.p_mean, self.p_std = float(sigma_data), float(p_mean), float(p_std)
        self.target_scale = float(target_scale)
        self.encoder: nn.Module | None = None

    # -- construction -------------------------------------------------------------------
    def build_modules(self) -> dict[str, nn.Module]:
        ctx = {"channels": self.cfg.data.channels, "sample_rate": self.cfg.data.sample_rate}
        if self.encoder_ref is not None:
            self.encoder = build_frozen(self, self.encoder_ref, "encoder",
                                        "task.params.encoder", **ctx)
        dim = getattr(self.encoder, "dim", None) if self.encoder is not None \
            else self.cfg.data.channels
        net_ctx = {**ctx, **({"dim": dim} if dim is not None else {})}
        net = self.build(self.denoiser_ref, "decoder", "task.params.denoiser", **net_ctx)
        return {"denoiser": EDMDenoiser(net, self.sigma_data)}

    def attach(self, engines: dict[str, Any]) -> None:
        super().attach(engines)
        if self.encoder is not None:
            self.encoder.to(engines["denoiser"].device)

    def build_sampler(self) -> Any:
        ref = self.cfg.model.sampler
        return EulerSampler() if ref is None else self.build(ref, "sampler", "model.sampler")

    # -- targets ------------------------------------------------------------------------
    @torch.no_grad()
    def target(self, batch: dict[str, Any]) -> Tensor:
        """``x0``: ``target_scale`` times the frozen latent ``(batch, dim, frames)`` or the
        audio ``(batch, channels, time)``, in the engine's dtype."""
        engine = self.engines["denoiser"]
        audio = batch["audio"].to(device=engine.device, dtype=torch.float32)
        x0 = self.encoder(audio) if self.encoder is not None else audio
        return (x0 * self.target_scale).to(engine.dtype)

    # -- steps --------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        x0 = self.target(batch)
        mask = batch.get("mask") if self.encoder is None else None
        if mask is not None:
            mask = mask.to(x0.device)
        loss, sigma = edm_loss(self.engines["denoiser"], x0, sigma_data=self.sigma_data,
                               p_mean=self.p_mean, p_std=self.p_std, mask=mask)
        used = self.optimize("denoiser", loss)
        return {"loss/total": loss.detach(), "skipped": torch.tensor(float(not used)),
                "diffusion/log_sigma": sigma.log().mean().detach()}

    @torch.no_grad()
    def sample(self, shape: tuple[int, ...], cond: Tensor | None = None,
               guidance_scale: float = 1.0, generator: torch.Generator | None = None
               ) -> Tensor:
        """New targets ``shape`` = ``(batch, dim, frames)``, divided back by ``target_scale``
        (latents for the frozen encoder's decoder, or audio)."""
        engine = self.engines["denoiser"]
        noise = torch.randn(shape, generator=generator).to(device=engine.device,
                                                            dtype=engine.dtype)
        x = self.build_sampler()(engine, noise, cond, guidance_scale)
        return x.float() / self.target_scale
