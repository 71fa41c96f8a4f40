"""``core.frozen_encoder``: a frozen (pretrained or seeded random) encoder + a trained decoder.

The encoder is held outside the model's parameters and state dict
(:meth:`~audio_core.contracts.models.AudioModel.add_frozen`): it is never in an optimizer, a
checkpoint or an export. The export holds the decoder (and optional quantizer) plus the
latent statistics; :meth:`FrozenEncoderAutoencoder.from_config` rebuilds the encoder from its
reference in the config: pretrained encoders load their own weights (e.g. a
``from_pretrained`` path in their params), randomly initialised ones are built under
``torch.manual_seed(run.seed)``, identical on every rank and at load time.

Latents are normalised per channel with ``latent_stats`` (a file from ``audio-core
stats``; the identity without one) before the decoder, as the decoder is trained on them;
``noise_tau > 0`` adds ``sigma * N(0, I)``, ``sigma ~ U[0, noise_tau]`` per example, to the
normalised latent in training only (a decoder robust to a stage-2 model's imperfect latents).

:class:`FrozenEncoder` is the base a third-party frozen encoder derives from: it implements
``features(windows)`` on fixed-length windows; the base resamples, normalises, windows and
keeps the encoder contract.
"""

from __future__ import annotations

from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.contracts.components import Decoder, Encoder
from audio_core.contracts.models import Quantizer
from audio_core.models.autoencoder import AudioAutoencoder, audio_context
from audio_core.models.normalizer import LatentNormalizer

NORMALIZATIONS = ("peak", "standard", "none")


class EncoderGeometryError(ValueError):
    """Window length, patch size and sample rates do not fit together."""


def normalize_waveform(x: Tensor, mode: str) -> Tensor:
    """Per-example normalisation of ``x`` ``(batch, time)`` (see :data:`NORMALIZATIONS`)."""
    if mode == "peak":
        return x / (x.abs().amax(dim=-1, keepdim=True) + 1e-8)
    if mode == "standard":
        mean = x.mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + 1e-7)
    return x


class FrozenEncoder(nn.Module, Encoder):
    """The base a frozen (pretrained representation) encoder derives from: waveform
    ``(batch, channels, time)`` at ``sample_rate`` -> features ``(batch, hidden_size,
    ceil(time / hop_length))``, an :class:`~audio_core.contracts.components.Encoder`.

    The base does the waveform preprocessing: (1) mix to mono, resample from the data rate
    to ``input_rate`` and normalise (``peak``: to a peak of 1; ``standard``: zero mean, unit
    variance, as the wav2vec 2.0 feature extractor; ``none``); (2) cut into windows of
    ``max_duration`` seconds, the last one zero-padded (``None``: one window of any
    length); (3) ``features(windows)`` -> tokens, concatenated over the windows, trimmed to
    ``ceil(time / hop_length)`` frames. ``dim`` (= ``hidden_size``) and ``hop_length`` (=
    ``patch_size`` in data-rate samples) are what :class:`FrozenEncoderAutoencoder` reads;
    ``window_frames`` is the tokens per window.

    Subclasses call ``super().__init__(hidden_size=..., patch_size=..., ...)`` and implement
    :meth:`features`. ``tokens_per_step`` > 1 says that many consecutive tokens share one time
    step (``patch_size`` is then the samples per token, ``tokens_per_step * patch_size``
    per step).
    """

    def __init__(self, *, hidden_size: int, patch_size: int, sample_rate: int = 16000,
                 channels: int = 1, max_duration: float | None = 10.0,
                 normalize: str = "peak", input_rate: int = 16000,
                 tokens_per_step: int = 1) -> None:
        super().__init__()
        name = type(self).__name__
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"{name}: normalize must be one of {NORMALIZATIONS}, got "
                             f"{normalize!r}")
        if min(hidden_size, patch_size, sample_rate, channels, input_rate,
               tokens_per_step) < 1:
            raise ValueError(f"{name}: hidden_size, patch_size, sample_rate, channels, "
                             f"input_rate and tokens_per_step must be >= 1")
        self.hidden_size, self.patch_size = int(hidden_size), int(patch_size)
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.input_rate, self.normalize = int(input_rate), normalize
        self.tokens_per_step = int(tokens_per_step)
        hop = self.patch_size * self.sample_rate / self.input_rate
        if hop != int(hop):
            raise EncoderGeometryError(
                f"{name}: a token covers {self.patch_size} samples at {self.input_rate} Hz, "
                f"which is {hop:g} samples at the data rate {self.sample_rate} Hz; use a data "
                f"sample rate where this is a whole number (e.g. {self.input_rate})")
        self.hop_length = int(hop)
        self.max_duration = None if max_duration is None else float(max_duration)
        self.window = None
        if self.max_duration is not None:
            window = self.max_duration * self.input_rate
            if abs(window - round(window)) > 1e-6 or round(window) % self.patch_size \
                    or window <= 0:
                fitting = max(1, round(window / self.patch_size)) * self.patch_size
                raise EncoderGeometryError(
                    f"{name}: max_duration={self.max_duration:g} s is {window:g} samples at "
                    f"{self.input_rate} Hz, not a positive multiple of the encoder's patch size "
                    f"({self.patch_size} samples); use a multiple of "
                    f"{self.patch_size / self.input_rate:g} s, e.g. "
                    f"{fitting / self.input_rate:g}")
            self.window = round(window)

    @property
    def dim(self) -> int:
        """Feature channels (``hidden_size``): what the latent normaliser and decoder take."""
        return self.hidden_size

    @property
    def window_frames(self) -> int | None:
        """Tokens per ``max_duration`` window (``None``: one window of any length)."""
        return None if self.window is None else self.window // self.patch_size

    def features(self, windows: Tensor) -> Tensor:
        """Windows ``(n, samples)`` at ``input_rate`` (``samples`` a multiple of
        ``patch_size``) -> tokens ``(n, samples // patch_size, hidden_size)``."""
        raise NotImplementedError

    def prepare(self, waveform: Tensor) -> Tensor:
        """Steps 1-2 of the module docstring: ``(batch, channels, time)`` -> windows
        ``(batch * n, window)`` at ``input_rate``, ``n`` windows per example."""
        if waveform.ndim != 3:
            raise ValueError(f"{type(self).__name__} expects a waveform (batch, channels, time), "
                             f"got shape {tuple(waveform.shape)}")
        frames = self._frames(waveform.shape[-1])
        x = waveform.float().mean(dim=1)
        if self.sample_rate != self.input_rate:
            from audio_core.audio.resample import resample

            x = resample(x, self.sample_rate, self.input_rate)
        x = normalize_waveform(x, self.normalize)
        needed = frames * self.patch_size
        window = self.window or needed
        # integer arithmetic (tensor ops when traced for ONNX): n = max(1, ceil(needed / window))
        n = (needed + window - 1) // window if self.window else 1
        n = n if not isinstance(n, int) else max(1, n)
        target = n * window  # zero-pad or trim to n windows
        if isinstance(target, int):  # eager: exactly the missing samples
            x = F.pad(x, (0, max(0, target - x.shape[-1])))[..., :target]
        else:  # traced: pad by a whole target, then cut (no Python test on a size)
            x = F.pad(x, (0, target))[..., :target]
        return x.reshape(-1, window)

    def forward(self, waveform: Tensor) -> Tensor:
        batch, frames = waveform.shape[0], self._frames(waveform.shape[-1])
        windows = self.prepare(waveform)
        tokens = self.features(windows)
        expected = (windows.shape[0], windows.shape[1] // self.patch_size, self.hidden_size)
        if tuple(tokens.shape) != expected:
            raise RuntimeError(f"{type(self).__name__}.features gave {tuple(tokens.shape)} for "
                               f"windows {tuple(windows.shape)}; expected {expected} "
                               f"(window // patch_size tokens of hidden_size)")
        out = tokens.reshape(batch, -1, tokens.shape[-1]).transpose(1, 2)  # b h (n t)
        return out[..., :frames]

    def _frames(self, samples: Any) -> Any:
        """``ceil(samples / hop_length)`` in integer arithmetic (a tensor when traced)."""
        return (samples + self.hop_length - 1) // self.hop_length

    def extra_repr(self) -> str:
        return (f"hidden_size={self.hidden_size}, patch_size={self.patch_size}, "
                f"hop_length={self.hop_length}, max_duration={self.max_duration}, "
                f"normalize={self.normalize!r}")


def build_seeded(seed: int, build: Any) -> nn.Module:
    """``build()`` under ``torch.manual_seed(seed)`` without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class FrozenEncoderAutoencoder(AudioAutoencoder):
    """Waveform -> frozen encoder (fp32, no gradients) -> normalised latent ``(batch,
    latent_dim, frames)`` -> optional quantizer -> trained decoder -> waveform."""

    slots: ClassVar[dict[str, bool]] = {"encoder": True, "decoder": True, "quantizer": False}

    def __init__(self, encoder: Encoder, decoder: Decoder,
                 quantizer: Quantizer | None = None, *, sample_rate: int,
                 channels: int = 1, noise_tau: float = 0.0) -> None:
        super().__init__(None, decoder, quantizer, sample_rate=sample_rate,
                         channels=channels)
        self.add_frozen("encoder", cast(nn.Module, encoder))
        if noise_tau < 0:
            raise ValueError(f"noise_tau must be >= 0, got {noise_tau}")
        self.noise_tau = float(noise_tau)
        self.normalizer = LatentNormalizer(int(encoder.dim))

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False,
                    latent_stats: str | None = None,
                    noise_tau: float = 0.0) -> FrozenEncoderAutoencoder:
        from audio_core.models.build import build_slot

        ctx = audio_context(cfg)
        encoder: Any = build_seeded(cfg.run.seed,
                                    lambda: build_slot(cfg, registry, "encoder", **ctx))
        model = cls(encoder, build_slot(cfg, registry, "decoder", **ctx),
                    build_slot(cfg, registry, "quantizer", **ctx),
                    sample_rate=cfg.data.sample_rate, channels=cfg.data.channels,
                    noise_tau=noise_tau)
        if latent_stats is not None and not loading:
            model.normalizer.load(latent_stats)
        return model

    def encoder_module(self) -> Encoder:
        return cast(Encoder, self._frozen["encoder"])

    @property
    def latent_dim(self) -> int:
        return self.normalizer.dim

    @torch.no_grad()
    def features(self, waveform: Tensor) -> Tensor:
        """Raw frozen-encoder output ``(batch, dim, frames)``, fp32 (what ``audio-core stats``
        measures)."""
        encoder = self.frozen_on("encoder", waveform.device)
        return encoder(waveform.float())

    def encode_latent(self, waveform: Tensor) -> Tensor:
        latent = self.normalizer.normalize(self.features(waveform))
        p = next(self.parameters(), None)
        return latent if p is None else latent.to(p.dtype)

    def augment(self, latent: Tensor) -> Tensor:
        """Noise augmentation in training: ``+ sigma * N(0, I)``, ``sigma ~ U[0, noise_tau]``
        per example; unchanged in eval mode."""
        if not self.training or self.noise_tau == 0:
            return latent
        sigma = torch.rand(latent.shape[0], 1, 1, device=latent.device) * self.noise_tau
        return latent + sigma.to(latent.dtype) * torch.randn_like(latent)
