"""``mousai.diffusion_autoencoder``: Moûsai's diffusion magnitude autoencoder (stage 1).

``encode``: the magnitude encoder (``model.encoder``, e.g. ``mousai.magnitude``) maps a
waveform ``(batch, channels, time)`` to a tanh-bounded latent ``(batch, latent_dim,
ceil(time / hop_length))``. ``decode``: the U-Net denoiser (``model.denoiser``, e.g.
``mousai.unet``) with the latent injected at ``inject_depth`` samples the waveform from
noise with ``model.sampler`` (default DDIM) along ``model.objective`` (default v-diffusion),
in ``decode_steps`` steps. Training (task ``mousai.autoencoder``) fits the denoiser's
v-prediction on noised waveforms given the latent of the clean one; encoder and denoiser
train together. The diffusion runs on ``scale * waveform`` (``scale`` > 1 brings quiet audio
closer to unit variance, so fewer noise levels drown it; 1 is the original setting).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.contracts.models import Autoencoder, ProgressFn
from audio_core.contracts.onnx import OnnxGraphs
from audio_core.diffusion.objectives import draw
from audio_core.errors import ConfigError

DEFAULT_OBJECTIVE = "core.v_diffusion"
DEFAULT_SAMPLER = "core.ddim"


class DiffusionAutoencoder(Autoencoder):
    """See the module docstring. ``decode(latent, length=None, steps=None, seed=0)``: the
    same latent, steps and seed give the same waveform; ``clamp`` bounds each step's data
    prediction to the audio range [-1, 1]."""

    slots: ClassVar[dict[str, bool]] = {"encoder": True, "denoiser": True, "objective": False,
                                        "sampler": False}

    def __init__(self, encoder: nn.Module, denoiser: nn.Module, objective: Any, sampler: Any,
                 *, sample_rate: int, channels: int, decode_steps: int = 50,
                 clamp: bool = True, scale: float = 1.0) -> None:
        super().__init__(sample_rate=sample_rate, channels=channels)
        if decode_steps < 1:
            raise ConfigError(f"model.params.decode_steps must be >= 1, got {decode_steps}",
                              "model.params.decode_steps")
        if not scale > 0:
            raise ConfigError(f"model.params.scale must be > 0, got {scale}",
                              "model.params.scale")
        inject = getattr(denoiser, "inject_depth", None)
        if getattr(encoder, "channels", channels) != channels or denoiser.dim != channels:
            raise ConfigError(f"the encoder and the denoiser must take {channels}-channel audio "
                              f"(data.channels); got {getattr(encoder, 'channels', '?')} and "
                              f"{denoiser.dim}", "model.denoiser")
        if inject is None or denoiser.inject_dim != encoder.latent_dim:
            raise ConfigError(f"model.denoiser must inject the encoder's {encoder.latent_dim}-"
                              f"channel latent (set its inject_depth; inject_dim comes from the "
                              f"encoder)", "model.denoiser.params.inject_depth")
        if denoiser.downsampling(inject) != encoder.hop_length:
            raise ConfigError(
                f"model.denoiser level {inject} has one frame per "
                f"{denoiser.downsampling(inject)} samples but the encoder's latent one per "
                f"{encoder.hop_length}: choose inject_depth (or patch_size/factors) so that "
                f"patch_size * prod(factors[:inject_depth + 1]) == {encoder.hop_length}",
                "model.denoiser.params.inject_depth")
        self.encoder, self.denoiser = encoder, denoiser
        self.objective, self.sampler = objective, sampler
        self.decode_steps, self.clamp, self.scale = int(decode_steps), bool(clamp), float(scale)

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False,
                    decode_steps: int = 50, clamp: bool = True,
                    scale: float = 1.0) -> DiffusionAutoencoder:
        from audio_core.models.build import build_slot

        rate, channels = cfg.data.sample_rate, cfg.data.channels
        encoder = build_slot(cfg, registry, "encoder", channels=channels)
        denoiser = build_slot(cfg, registry, "denoiser", dim=channels,
                              inject_dim=encoder.latent_dim)
        objective = build_slot(cfg, registry, "objective") or registry.build(
            "objective", DEFAULT_OBJECTIVE, {}, path="model.objective")
        sampler = build_slot(cfg, registry, "sampler") or registry.build(
            "sampler", DEFAULT_SAMPLER, {}, path="model.sampler")
        return cls(encoder, denoiser, objective, sampler, sample_rate=rate, channels=channels,
                   decode_steps=decode_steps, clamp=clamp, scale=scale)

    # -- geometry -------------------------------------------------------------------------
    @property
    def hop_length(self) -> int:  # type: ignore[override]
        return int(self.encoder.hop_length)

    @property
    def latent_dim(self) -> int:  # type: ignore[override]
        return int(self.encoder.latent_dim)

    @property
    def length_multiple(self) -> int:
        """Waveform lengths the denoiser takes are multiples of this (a multiple of the hop)."""
        return math.lcm(self.hop_length, self.denoiser.length_multiple)

    @property
    def compression(self) -> float:
        """Waveform values per latent value."""
        return self.channels * self.hop_length / self.latent_dim

    # -- the autoencoder ------------------------------------------------------------------
    def encode(self, waveform: Tensor) -> Tensor:
        """``(batch, channels, time)`` -> latent ``(batch, latent_dim, ceil(time /
        hop_length))`` in (-1, 1)."""
        return self.encoder(self._place(waveform))

    def forward(self, net_input: Tensor, net_time: Tensor, audio: Tensor) -> Tensor:
        """The training forward: the denoiser's prediction for the noised (scaled) waveform
        ``net_input`` ``(batch, channels, time)`` at ``net_time`` ``(batch,)``, given the latent
        of the clean ``audio`` (same shape, unscaled; ``time`` a multiple of
        :attr:`length_multiple`)."""
        return self.denoiser(net_input, net_time, None, latent=self.encoder(audio))

    @torch.no_grad()
    def decode(self, latent: Tensor, length: int | None = None, steps: int | None = None,
               seed: int = 0, progress: ProgressFn | None = None) -> Tensor:
        """Latent ``(batch, latent_dim, frames)`` -> waveform ``(batch, channels, length)``
        (default ``frames * hop_length``), sampled in ``steps`` (default ``decode_steps``)
        from noise drawn with ``seed``."""
        steps = self.decode_steps if steps is None else int(steps)
        if steps < 1:
            raise ValueError(f"decode steps must be >= 1, got {steps}")
        length = latent.shape[-1] * self.hop_length if length is None else int(length)
        generator = torch.Generator().manual_seed(int(seed))
        noise = draw("normal", self.noise_shape(latent), generator, latent.device)
        audio = self.sample(latent, noise, steps, generator=generator, progress=progress)
        return audio[..., :length]

    def noise_shape(self, latent: Tensor) -> tuple[int, int, int]:
        """The starting noise of :meth:`sample` for ``latent`` ``(batch, latent_dim,
        frames)``: ``(batch, channels, ceil(frames / m) * m * hop_length)``, ``m =
        length_multiple / hop_length`` (the denoiser's length multiple)."""
        multiple = self.length_multiple // self.hop_length
        padded = (latent.shape[-1] + multiple - 1) // multiple * multiple
        return (latent.shape[0], self.channels, padded * self.hop_length)

    def sample(self, latent: Tensor, noise: Tensor, steps: int,
               generator: torch.Generator | None = None,
               progress: ProgressFn | None = None) -> Tensor:
        """Latent ``(batch, latent_dim, frames)`` and standard normal ``noise`` of
        :meth:`noise_shape` -> waveform ``(batch, channels, noise length)`` in ``steps``
        sampler steps from ``x_T = sigma(t_max) * noise``; tensor ops only (the ONNX decoder
        graph unrolls it)."""
        multiple = self.length_multiple // self.hop_length
        frames = latent.shape[-1]
        latent = F.pad(self._place(latent), (0, (frames + multiple - 1) // multiple * multiple
                                             - frames), mode="replicate")
        _, sigma = self.objective.alpha_sigma(torch.tensor([self.objective.t_max]))
        x_T = sigma.item() * noise.to(latent.device).float()
        dtype = latent.dtype

        def denoise(x_t: Tensor, t: Tensor) -> Tensor:
            net_input, net_time = self.objective.net_inputs(x_t, t)
            prediction = self.denoiser(net_input.to(dtype), net_time, None, latent=latent)
            x0 = self.objective.denoised(prediction.float(), x_t, t)
            return x0.clamp(-self.scale, self.scale) if self.clamp else x0

        grid = self.objective.timesteps(steps)
        audio = self.sampler(denoise, x_T, grid, self.objective, generator=generator,
                             progress=progress)
        return audio.float() / self.scale

    def onnx_graphs(self) -> OnnxGraphs:
        """``audio-core export --format onnx``: the encoder, and a decoder of ``(latent,
        noise)`` unrolling ``decode_steps`` sampler steps (see :mod:`audio_plugin_mousai.onnx`)."""
        from audio_plugin_mousai.onnx import onnx_graphs

        return onnx_graphs(self)
