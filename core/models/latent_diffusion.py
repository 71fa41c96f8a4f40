"""``core.latent_diffusion``: a denoiser on a stage-1 model's latents (or on audio) that
generates, with a conditioner, an objective and a sampler.

Training (``core.diffusion`` task) noises normalised latents ``x0`` ``(batch, latent_dim,
frames)`` along the objective's path and fits ``model(net_input, net_time, inputs, drop)``
to its target. Generation draws the prior, integrates the sampler over the objective's grid
with classifier-free guidance, de-normalises, and decodes with the stage-1 model.

Model params: ``stage1`` (the stage-1 export or run folder whose latents are modelled;
``None``: the waveform itself, ``latent_dim = data.channels``), ``latent_stats`` (a file
from ``audio-core stats``, applied as per-channel normalisation; exported with the weights),
``steps`` and ``guidance`` (sampling defaults), ``seconds`` (default length to generate).
Generating longer than the training crops (``data.segment_seconds``) logs a warning when
the denoiser says it does not carry past them (``extrapolates_length = False``, e.g.
``rae.dit`` with absolute positions, whose output fades there).
``generate(..., decode_steps=N)`` passes ``steps=N`` to a stage-1 model that samples in its
decoder (``decode(latent, length, steps=...)``, e.g. a diffusion autoencoder); ``None``
keeps its own default. The stage-1 model is frozen and held outside the weights: the export
copies it into ``EXPORT/stage1/`` and names it relative to the export folder
(:mod:`audio_core.storage.bundle`), and the weights record its fingerprint, which must match
when the export is loaded.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, cast

import torch
from torch import Tensor

from audio_core.contracts.components import Conditioner, Denoiser, Objective, Sampler
from audio_core.contracts.models import Autoencoder, Generator, ProgressFn
from audio_core.contracts.records import Conditioning
from audio_core.errors import AudioCoreError, ConfigError
from audio_core.models.conditioning import ConditionerSet, ConditioningError, own_keys
from audio_core.models.normalizer import LatentNormalizer

log = logging.getLogger(__name__)

DEFAULT_OBJECTIVE = "core.rectified_flow"
DEFAULT_SAMPLER = "core.dpmpp_2m"
FINGERPRINT_BYTES = 8


class GenerationError(AudioCoreError, ValueError):
    """Bad generation settings or conditioning (an unknown class, a text for a class model)."""


class Stage1Mismatch(AudioCoreError):
    """The stage-1 model found at load time is not the one the stage-2 model was trained on."""


def fingerprint_bytes(fingerprint: str) -> Tensor:
    return torch.tensor(list(bytes.fromhex(fingerprint)), dtype=torch.uint8)


def load_stage1(path: str) -> Autoencoder:
    """The stage-1 model at ``path`` (export or run folder), frozen; an error naming the
    path when it is missing or not an autoencoder."""
    from audio_core.models.loading import load

    where = Path(path).expanduser()
    if not where.exists():
        raise ConfigError(f"model.params.stage1: {where} does not exist (the stage-1 export "
                          f"or run folder whose latents this model generates)",
                          "model.params.stage1")
    model = load(where)
    if not isinstance(model, Autoencoder):
        raise ConfigError(f"model.params.stage1: {where} holds a {type(model).__name__}, not "
                          f"an autoencoder with encode/decode", "model.params.stage1")
    return model


class LatentDiffusion(Generator):
    """See the module docstring. ``denoiser(x, t, cond)`` predicts the objective's target
    for ``x`` ``(batch, latent_dim, frames)``; the conditioners map batch values (labels,
    texts, timing) to one :class:`Conditioning`, their tokens concatenated
    (:mod:`audio_core.models.conditioning`).

    ``conditioner``: one conditioner, held as the submodule ``conditioner`` (the weights'
    names ``conditioner.*``, as from ``model.conditioner``); or ``conditioners``: NAME ->
    conditioner, held as ``conditioners.NAME``, with ``conditioner_keys`` NAME -> the batch
    keys each reads (default: its ``input_key``)."""

    slots: ClassVar[dict[str, bool]] = {"denoiser": True, "conditioner": False,
                                        "conditioners": False, "objective": False,
                                        "sampler": False}

    def __init__(self, denoiser: Denoiser, objective: Objective, sampler: Sampler,
                 conditioner: Conditioner | None = None, *,
                 conditioners: Mapping[str, Conditioner] | None = None,
                 conditioner_keys: Mapping[str, tuple[str, ...]] | None = None,
                 sample_rate: int, channels: int,
                 latent_dim: int, hop_length: int = 1, steps: int = 50,
                 guidance: float = 1.0, seconds: float = 1.0,
                 stage1: Autoencoder | None = None,
                 trained_seconds: float | None = None) -> None:
        super().__init__(sample_rate=sample_rate, channels=channels)
        if steps < 1 or guidance < 0 or seconds <= 0:
            raise ValueError(f"need steps >= 1, guidance >= 0, seconds > 0; got steps={steps}, "
                             f"guidance={guidance}, seconds={seconds}")
        self.denoiser = denoiser
        self._set_conditioners(conditioner, conditioners, conditioner_keys or {})
        self.objective, self.sampler = objective, sampler
        self.latent_dim, self.hop_length = int(latent_dim), int(hop_length)
        self.steps, self.guidance, self.seconds = int(steps), float(guidance), float(seconds)
        self.trained_seconds = None if trained_seconds is None else float(trained_seconds)
        self.normalizer = LatentNormalizer(self.latent_dim)
        self.register_buffer("stage1_fingerprint", torch.zeros(FINGERPRINT_BYTES,
                                                               dtype=torch.uint8))
        self.stage1: Autoencoder | None = None
        if stage1 is not None:
            from audio_core.models.fingerprint import model_fingerprint

            self.add_frozen("stage1", stage1)
            self._stage1_fingerprint = model_fingerprint(stage1)
            self.stage1_fingerprint.copy_(fingerprint_bytes(self._stage1_fingerprint))
            self.register_load_state_dict_post_hook(_check_stage1)

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False,
                    stage1: str | None = None, latent_stats: str | None = None,
                    steps: int = 50, guidance: float = 1.0,
                    seconds: float | None = None) -> LatentDiffusion:
        from audio_core.models.build import build_slot

        first = load_stage1(stage1) if stage1 is not None else None
        if first is not None:
            rate, channels = first.sample_rate, first.channels
            dim, hop = first.latent_dim, first.hop_length
        else:
            rate, channels = cfg.data.sample_rate, cfg.data.channels
            dim, hop = cfg.data.channels, 1
        from audio_core.models.build import build_conditioners

        conditioner = build_slot(cfg, registry, "conditioner")
        named, keys = build_conditioners(cfg, registry)
        cond_dim = ConditionerSet(named, keys).dim if conditioner is None else \
            int(conditioner.dim)
        denoiser = build_slot(cfg, registry, "denoiser", dim=dim, cond_dim=cond_dim)
        objective = build_slot(cfg, registry, "objective") or registry.build(
            "objective", DEFAULT_OBJECTIVE, {}, path="model.objective")
        sampler = build_slot(cfg, registry, "sampler") or registry.build(
            "sampler", DEFAULT_SAMPLER, {}, path="model.sampler")
        model = cls(denoiser, objective, sampler, conditioner, conditioners=named or None,
                    conditioner_keys=keys, sample_rate=rate,
                    channels=channels, latent_dim=dim, hop_length=hop, steps=steps,
                    guidance=guidance, seconds=seconds or cfg.data.segment_seconds,
                    stage1=first, trained_seconds=cfg.data.segment_seconds)
        if latent_stats is not None and not loading:
            model.normalizer.load(latent_stats)
        return model

    # -- conditioning -------------------------------------------------------------------
    def _set_conditioners(self, single: Conditioner | None,
                          named: Mapping[str, Conditioner] | None,
                          keys: Mapping[str, tuple[str, ...]]) -> None:
        from audio_core.models.conditioning import check_name, shorthand_name

        if single is not None and named:
            raise ValueError("give conditioner (one) or conditioners (by name), not both")
        if single is not None:
            self.conditioner = single  # the weights keep the names conditioner.*
            named = {shorthand_name(single): single}
        elif named:
            for name in named:
                check_name(name)
            self.conditioners = torch.nn.ModuleDict(cast(dict[str, Any], dict(named)))
        named = dict(named or {})
        self.condition_set = ConditionerSet(
            named, {n: tuple(keys.get(n, own_keys(m))) for n, m in named.items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name != "conditioner" or "condition_set" not in vars(self):
                raise
        # ``conditioner`` is not a submodule: none, or several by name
        named = self.condition_set.modules
        if len(named) > 1:
            raise AttributeError(f"this model has conditioners {list(named)}: use "
                                 f"model.condition_set.modules[name]")
        return next(iter(named.values()), None)

    @property
    def condition_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        """Every batch key the conditioners read, in config order."""
        return tuple(k for keys in self.condition_set.keys.values() for k in keys)

    @property
    def conditions(self) -> dict[str, tuple[str, ...]]:
        """Conditioner NAME -> the batch keys it reads (``generate --cond NAME=VALUE``)."""
        return dict(self.condition_set.keys)

    def condition(self, inputs: Any, batch: int, drop: Tensor | None = None
                  ) -> Conditioning | None:
        """Conditioning for ``inputs`` (NAME -> batch values, see
        :meth:`ConditionerSet.__call__`; with one conditioner also its values alone;
        ``None``: the null embeddings), with the examples where ``drop`` ``(batch,)`` is
        True replaced by the null conditioning (every conditioner's null together)."""
        conditioners = self.condition_set
        if not len(conditioners):
            return None
        if inputs is None:
            return conditioners.null(batch)
        if not (isinstance(inputs, Mapping) and set(inputs) <= set(conditioners.names)):
            if len(conditioners) != 1:
                raise ConditioningError(f"conditioning inputs must map the conditioner names "
                                        f"{list(conditioners.names)} to batch values")
            inputs = {conditioners.names[0]: inputs}
        cond = conditioners(inputs, batch)
        if drop is not None and bool(drop.any()):
            from audio_core.diffusion.guidance import drop_conditioning

            cond = drop_conditioning(cond, conditioners.null(batch), drop)
        return cond

    def forward(self, net_input: Tensor, net_time: Tensor, inputs: Any = None,
                drop: Tensor | None = None) -> Tensor:
        """The training forward: the denoiser's prediction for ``net_input`` ``(batch,
        latent_dim, frames)`` at ``net_time`` ``(batch,)`` under the conditioning of
        ``inputs`` (dropped to the null embedding where ``drop``)."""
        cond = self.condition(inputs, net_input.shape[0], drop)
        if cond is not None:
            cond = cond.to(net_input.dtype)
        return self.denoiser(net_input, net_time, cond)

    def condition_inputs(self, conditioning: Any, num_samples: int) -> dict[str, Any]:
        """``generate``'s ``conditioning`` (``None``, NAME -> value or one value per
        sample, or one conditioner's value alone) as NAME -> batch values."""
        try:
            return self.condition_set.from_user(conditioning, num_samples)
        except ConditioningError as exc:
            raise GenerationError(str(exc)) from exc

    # -- latents ------------------------------------------------------------------------
    def num_frames(self, seconds: float) -> int:
        return math.ceil(seconds * self.sample_rate / self.hop_length)

    def frame_multiple(self) -> int:
        return int(self.denoiser.length_multiple)

    @torch.no_grad()
    def to_latent(self, audio: Tensor) -> Tensor:
        """Audio ``(batch, channels, time)`` -> normalised latent ``(batch, latent_dim,
        frames)`` in fp32 (through the frozen stage-1 model, or the audio itself)."""
        if self.stage1 is None:
            return self.normalizer.normalize(audio.float())
        stage1 = self.frozen_on("stage1", audio.device)
        return self.normalizer.normalize(stage1.encode(audio.float()).float())

    @property
    def decode_steps(self) -> int | None:
        return None if self.stage1 is None else self.stage1.decode_steps

    def check_decode_steps(self, decode_steps: int | None) -> None:
        """:class:`GenerationError` unless ``decode_steps`` is ``None`` or an int >= 1 for a
        stage-1 model whose ``decode`` takes ``steps`` (one that samples when decoding)."""
        if decode_steps is None:
            return
        if int(decode_steps) < 1:
            raise GenerationError(f"decode_steps must be >= 1, got {decode_steps}")
        if self.stage1 is None or "steps" not in inspect.signature(self.stage1.decode).parameters:
            what = "no stage-1 model" if self.stage1 is None else \
                f"a stage-1 {type(self.stage1).__name__}, which decodes in one pass"
            raise GenerationError(f"decode_steps={decode_steps} does not apply: this model has "
                                  f"{what} (only a stage-1 decoder that samples takes steps)")

    @torch.no_grad()
    def to_audio(self, latent: Tensor, length: int, decode_steps: int | None = None) -> Tensor:
        """Normalised latent -> waveform ``(batch, channels, length)``, fp32; ``decode_steps``
        is passed to the stage-1 ``decode`` as ``steps`` (see :meth:`check_decode_steps`)."""
        self.check_decode_steps(decode_steps)
        latent = self.normalizer.denormalize(latent.float())
        if self.stage1 is None:
            return latent[..., :length]
        stage1 = self.frozen_on("stage1", latent.device)
        options = {} if decode_steps is None else {"steps": int(decode_steps)}
        return stage1.decode(latent, length, **options).float()

    # -- generation -----------------------------------------------------------------------
    @torch.no_grad()
    def sample_latents(self, conditioning: Any = None, num_samples: int = 1,
                       steps: int | None = None, guidance: float | None = None, seed: int = 0,
                       frames: int = 16, progress: ProgressFn | None = None) -> Tensor:
        """Normalised latents ``(num_samples, latent_dim, frames)`` from the sampler."""
        from audio_core.diffusion.guidance import guided_denoiser

        n_steps = int(cast(int, self.steps)) if steps is None else int(steps)
        scale = float(cast(float, self.guidance)) if guidance is None else float(guidance)
        if n_steps < 1 or scale < 0:
            raise ValueError(f"need steps >= 1 and guidance >= 0, got {n_steps} and {scale}")
        multiple = self.frame_multiple()
        padded = -(-frames // multiple) * multiple
        generator = torch.Generator().manual_seed(int(seed))
        device = next(self.parameters()).device
        cond = null = None
        if len(self.condition_set):
            null = self.condition_set.null(num_samples)
            inputs = self.condition_inputs(conditioning, num_samples)
            cond = self.condition({k: _to(v, device) for k, v in inputs.items()},
                                  num_samples) if inputs else null
        shape = (num_samples, self.latent_dim, padded)
        size = self.latent_dim * padded
        grid = self.objective.timesteps(n_steps, size=size)
        x_t = self.objective.prior(shape, generator=generator, size=size).to(device)
        dtype = next(self.parameters()).dtype

        def net(x: Tensor, t: Tensor, c: Conditioning | None) -> Tensor:
            return self.denoiser(x.to(dtype), t.to(device),
                                 None if c is None else c.to(dtype)).float()

        denoise = guided_denoiser(net, self.objective, cond, null, scale)
        x0 = self.sampler(denoise, x_t.float(), grid, self.objective, generator=generator,
                          progress=progress)
        return x0[..., :frames]

    def warn_past_training_length(self, seconds: float) -> None:
        """Log a warning when ``seconds`` exceeds the training crops and the denoiser
        declares ``extrapolates_length = False``."""
        trained = self.trained_seconds
        if trained is None or seconds <= trained * 1.001 or \
                self.denoiser.extrapolates_length:
            return
        log.warning("generating %.3g s with a model trained on %.3g s crops whose denoiser "
                    "(%s) does not carry past its training length: expect the audio to fade "
                    "after %.3g s (train on longer crops, or use relative positions such as "
                    "rae.dit positions: rope)", seconds, trained,
                    type(self.denoiser).__name__, trained)

    @torch.no_grad()
    def generate(self, conditioning: Any = None, num_samples: int = 1, steps: int | None = None,
                 guidance: float | None = None, seed: int = 0, seconds: float | None = None,
                 progress: ProgressFn | None = None, decode_steps: int | None = None) -> Tensor:
        """As :meth:`Generator.generate`; ``decode_steps``: sampler steps of a stage-1 model
        that samples when decoding (``None``: its own default)."""
        clip = float(cast(float, self.seconds)) if seconds is None else float(seconds)
        if clip <= 0 or num_samples < 1:
            raise ValueError(f"need seconds > 0 and num_samples >= 1, got {clip} and "
                             f"{num_samples}")
        self.check_decode_steps(decode_steps)
        self.warn_past_training_length(clip)
        length = round(clip * self.sample_rate)
        latent = self.sample_latents(conditioning, num_samples, steps, guidance, seed,
                                     self.num_frames(clip), progress)
        return self.to_audio(latent, length, decode_steps)


def _to(inputs: Any, device: torch.device) -> Any:
    if isinstance(inputs, Mapping):
        return {k: _to(v, device) for k, v in inputs.items()}
    return inputs.to(device) if isinstance(inputs, Tensor) else inputs


def _check_stage1(module: LatentDiffusion, incompatible: Any) -> None:
    """After loading weights: the stored stage-1 fingerprint is the one found now."""
    stored = bytes(module.stage1_fingerprint.tolist()).hex()
    if stored != "00" * FINGERPRINT_BYTES and stored != module._stage1_fingerprint:
        raise Stage1Mismatch(
            f"this stage-2 model was trained on the latents of a stage-1 model with "
            f"fingerprint {stored}, but model.params.stage1 now holds fingerprint "
            f"{module._stage1_fingerprint}: point it at the export the model was trained with")
