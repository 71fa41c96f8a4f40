"""``core.diffusion``: train a latent diffusion model (``core.latent_diffusion``).

Per micro-batch, with ``x0`` the normalised latent ``(batch, latent_dim, frames)``: the
dataset's ``latent`` (pre-encoded by ``audio-core latents``, dataset ``core.latents``) or
the stage-1 encoding of its ``audio`` computed on the fly (or the audio itself without a
stage-1 model)::

    t ~ objective.sample_time          noise ~ N(0, I)
    net_input, net_time, target, w = objective.training_example(x0, noise, t)
    drop ~ Bernoulli(cond_dropout)     (per example: the null embedding, for guidance)
    loss = objective.loss(model(net_input, net_time, conditioning, drop), target, w, mask)

The conditioning is the batch values each conditioner reads (``label`` from class folders,
``text`` from captioned data, ``seconds_start``/``seconds_total`` from datasets cropping
files); a dropped example loses all of them together. Use ``train.ema_decay`` for EMA
weights (then exported).

Validation (:meth:`DiffusionTask.evaluate`): ``loss`` is the objective's loss on the
validation latents at seeded times and noise; the model then samples one clip per
validation example with its conditioning and ``train.val_steps`` steps, and ``fad`` (and,
class-conditioned, ``class_accuracy``) score them against the real clips
(:func:`~audio_core.tasks.evaluation.evaluate_generation`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from audio_core.audio.masks import frame_mask
from audio_core.errors import ConfigError
from audio_core.tasks.base import Task

#: What validation embeds real and sampled clips with unless ``train.val_embedding`` says.
DEFAULT_EMBEDDING = "core.logmel"



class DiffusionTask(Task):
    """Trains ``core.latent_diffusion`` (one engine, "denoiser"); see the module docstring.

    Params: ``cond_dropout`` (probability of training an example on the null conditioning,
    for classifier-free guidance; default 0.1 with a conditioner).
    """

    roles = ("denoiser",)
    model_type = "core.latent_diffusion"

    def __init__(self, *, cfg: Any, registry: Any, cond_dropout: float = 0.1) -> None:
        super().__init__(cfg=cfg, registry=registry)
        if not 0.0 <= cond_dropout <= 1.0:
            raise ConfigError(f"task.params.cond_dropout must be in [0, 1], got {cond_dropout}",
                              "task.params.cond_dropout")
        self.cond_dropout = float(cond_dropout)

    def build_modules(self) -> dict[str, nn.Module]:
        return {"denoiser": self.build_model()}

    # -- targets ------------------------------------------------------------------------
    @torch.no_grad()
    def target(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
        """``x0`` (normalised latent, fp32, on the engine's device) and its frame mask."""
        engine = self.engines["denoiser"]
        model = engine.module
        mask = batch.get("mask")
        if "latent" in batch:
            x0 = model.normalizer.normalize(batch["latent"].to(engine.device, torch.float32))
        elif "audio" in batch:
            audio = batch["audio"].to(engine.device, torch.float32)
            x0 = model.to_latent(audio)
            if mask is not None and model.hop_length > 1:
                mask = frame_mask(mask, x0.shape[-1], model.hop_length)
        else:
            raise KeyError(f"the diffusion task trains on 'latent' or 'audio' items; the "
                           f"dataset yields {sorted(batch)}")
        return x0, None if mask is None else mask.to(engine.device)

    def conditioning(self, batch: dict[str, Any], size: int) -> tuple[Any, Tensor | None]:
        """Each conditioner's batch values (NAME -> values) and the per-example drop mask
        ``(batch,)``: a dropped example gets every conditioner's null embedding."""
        engine = self.engines["denoiser"]
        conditioners = engine.module.condition_set
        if not len(conditioners):
            return None, None
        dataset = self.cfg.data.train.name if self.cfg.data.train is not None else "?"
        inputs = conditioners.from_batch(batch, dataset, engine.device)
        drop = torch.rand(size) < self.cond_dropout
        return inputs, drop.to(engine.device)

    # -- the step -----------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        engine = self.engines["denoiser"]
        objective = engine.module.objective
        x0, mask = self.target(batch)
        t = objective.sample_time(x0.shape[0], size=x0[0].numel(), device=x0.device)
        noise = torch.randn_like(x0)
        net_input, net_time, target, weight = objective.training_example(x0, noise, t)
        inputs, drop = self.conditioning(batch, x0.shape[0])
        prediction = engine(net_input.to(engine.dtype), net_time, inputs, drop)
        loss = objective.loss(prediction.float(), target, weight, mask)
        used = self.optimize("denoiser", loss)
        logs = {"loss/total": loss.detach(), "skipped": torch.tensor(float(not used)),
                "diffusion/t": t.float().mean().detach()}
        if drop is not None:
            logs["diffusion/dropped"] = drop.float().mean()
        return logs

    # -- validation ---------------------------------------------------------------------
    #: ZeRO-3: the model validation samples with (see :meth:`evaluation_model`)
    _replica: nn.Module | None = None
    #: the ``train.val_embedding`` component, once built
    _embedding: Any = None

    @torch.no_grad()
    def validation_loss(self, model: Any, batch: dict[str, Any], seed: int) -> Tensor:
        """The objective's loss of ``model`` on ``batch`` at times and noise drawn from
        ``seed``, with the batch's conditioning (none dropped)."""
        objective = model.objective
        x0, mask = self.target(batch)
        generator = torch.Generator().manual_seed(int(seed))
        t = objective.sample_time(x0.shape[0], size=x0[0].numel(), generator=generator,
                                  device=torch.device("cpu")).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        net_input, net_time, target, weight = objective.training_example(x0, noise, t)
        inputs, _ = self.conditioning(batch, x0.shape[0])
        dtype = next(model.parameters()).dtype
        prediction = model(net_input.to(dtype), net_time, inputs, None)
        return objective.loss(prediction.float(), target, weight, mask)

    def evaluation_model(self) -> nn.Module:
        """The model validation samples with, whose forward makes no collective call: the
        engine's module, or under ZeRO-3 (where every forward gathers partitioned
        parameters, and ranks may hold different numbers of validation batches) a replica
        built once and loaded with the gathered weights (collective)."""
        engine = self.engines["denoiser"]
        if engine.zero_stage != 3:
            return engine.module
        state = engine.full_state_dict()
        replica = self._replica
        if replica is None:
            from audio_core.models.build import build_model

            with torch.random.fork_rng(devices=[]):
                replica = self._replica = build_model(self.cfg, self.registry, loading=True)
        replica.load_state_dict(state)
        return replica.to(engine.device).eval()

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, Any]],
                 log_audio: Callable[[str, Tensor, int], None]) -> dict[str, float]:
        """``loss``, ``fad`` and (class-conditioned) ``class_accuracy``; see the module
        docstring. Collective: every rank calls it once per validation."""
        from audio_core.metrics import MetricAccumulator
        from audio_core.tasks.evaluation import evaluate_generation

        batches = list(batches)
        model = self.evaluation_model()
        acc = MetricAccumulator()
        for i, batch in enumerate(batches):
            loss = self.validation_loss(model, batch, self.cfg.run.seed + i)
            size = batch["latent" if "latent" in batch else "audio"].shape[0]
            acc.update({"loss": loss}, weight=size)
        metrics = evaluate_generation(self, model, batches, log_audio, self.embedding())
        return {**acc.compute(), **metrics}

    def embedding(self) -> Any:
        """The ``train.val_embedding`` component (built once; default ``core.logmel``)."""
        if self._embedding is None:
            from audio_core.config.schema import ComponentConfig

            ref = self.cfg.train.val_embedding or ComponentConfig(name=DEFAULT_EMBEDDING)
            self._embedding = self.build(ref, "embedding", "train.val_embedding")
        return self._embedding
