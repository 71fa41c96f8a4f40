"""The adversarial codec task: an autoencoder generator against discriminators.

Two engines: "generator" (encoder/quantizer/decoder, exported) and "discriminator" (every
``model.discriminators`` entry in one :class:`DiscriminatorList`). Per micro-batch::

    fake = G(real)                                   reconstruction (batch, channels, time)
    D step   (G frozen)  d_loss(D(real), D(fake.detach()))       if D is active this step
    G step   (D frozen)  reconstruction + quantizer loss
                         + adversarial_weight * g_loss(D(fake))
                         + feature_matching_weight * |feat(fake) - feat(real)|
                                                      if adversarial terms are on

Which engines run depends only on the optimizer step number (``warmup_steps``,
``d_update_every``, ``random_discriminator``) and on all-reduced finiteness flags, so every
rank makes the same engine calls. A micro-batch whose reconstruction, quantizer or D loss
is non-finite on any rank is skipped by both engines before either backward (the
accumulation counters of G and D stay aligned). If only the adversarial terms turn
non-finite after D's update, G steps on its reconstruction loss alone for that micro-batch
(logged as ``adversarial_dropped``) rather than leaving D one micro-batch ahead of G.

In G's step the discriminators run through the discriminator engine's raw module
(``engine.module``): a DeepSpeed engine's forward hooks its outputs so that any backward
through them runs that engine's backward prologue and divides the gradient by its
accumulation steps; G's backward must not trigger D's machinery (with ZeRO-0 DeepSpeed
raises, with ``grad_accum > 1`` G's adversarial gradient would be scaled twice).

Discriminators run on ``cat([real, fake])`` in one call, so batch-dependent layers
(batch norm) would mix the two halves; the built-ins have none.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import torch
from torch import Tensor, nn

from audio_core.components.adversarial import OBJECTIVES, feature_matching_loss, get_objective
from audio_core.components.discriminators import DiscriminatorList
from audio_core.config.schema import OptimizerConfig
from audio_core.distributed import all_finite
from audio_core.errors import ConfigError, format_choices
from audio_core.schedules import as_schedule
from audio_core.tasks.autoencoder import AutoencoderTask
from audio_core.tasks.base import reconstruction_objective


@contextlib.contextmanager
def frozen(engine: Any, active: bool = True) -> Iterator[None]:
    """``engine.requires_grad_(False)`` inside the block (when ``active``), then unfreeze."""
    if active:
        engine.requires_grad_(False)
    try:
        yield
    finally:
        if active:
            engine.requires_grad_(True)


def split_halves(outputs: list[tuple[list[Tensor], list[Tensor]]]
                 ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
    """Discriminator outputs on ``cat([real, fake])`` -> real logits, fake logits, real
    features, fake features (flattened over discriminators; batch halves)."""
    logits = [t.chunk(2, dim=0) for out in outputs for t in out[0]]
    feats = [t.chunk(2, dim=0) for out in outputs for t in out[1]]
    return ([r for r, _ in logits], [f for _, f in logits],
            [r for r, _ in feats], [f for _, f in feats])


class AdversarialCodecTask(AutoencoderTask):
    """GAN codec: :class:`AutoencoderTask`'s generator plus discriminators.

    Params: ``adversarial_weight`` and ``feature_matching_weight`` (G loss weights: numbers
    or schedules, :mod:`audio_core.schedules`, e.g. an adversarial ramp),
    ``loss`` (``hinge`` or ``least_squares``), ``warmup_steps`` (no D update and no
    adversarial terms before this optimizer step), ``d_update_every`` (D updates on steps
    where ``step % d_update_every == 0``), ``d_lr`` (the discriminator's learning rate;
    default ``train.optimizer.lr``), ``random_discriminator`` (each step trains against one
    discriminator chosen from the step number and ``run.seed``, the same on every rank),
    ``repulsion_weight``/``repulsion_margin`` (a term added to D's loss that keeps the mean
    real and fake scores at least ``margin`` apart, against discriminator collapse; 0: off).
    """

    roles = ("generator", "discriminator")
    slots: ClassVar[dict[str, bool]] = {"losses": True, "discriminators": True}

    def __init__(self, *, cfg: Any, registry: Any, adversarial_weight: Any = 1.0,
                 feature_matching_weight: Any = 2.0, loss: str = "hinge",
                 warmup_steps: int = 0, d_update_every: int = 1, d_lr: float | None = None,
                 random_discriminator: bool = False, repulsion_weight: float = 0.0,
                 repulsion_margin: float = 1.0) -> None:
        super().__init__(cfg=cfg, registry=registry)
        if loss not in OBJECTIVES:
            raise ConfigError(f"task.params.loss must be one of {format_choices(OBJECTIVES)}, "
                              f"got '{loss}'", "task.params.loss")
        for key, value, minimum in (("warmup_steps", warmup_steps, 0),
                                    ("d_update_every", d_update_every, 1)):
            if int(value) < minimum:
                raise ConfigError(f"task.params.{key} must be >= {minimum}, got {value}",
                                  f"task.params.{key}")
        if d_lr is not None and d_lr < 0:
            raise ConfigError(f"task.params.d_lr must be >= 0, got {d_lr}", "task.params.d_lr")
        if repulsion_weight < 0 or repulsion_margin <= 0:
            raise ConfigError(f"task.params.repulsion_weight must be >= 0 and repulsion_margin "
                              f"> 0, got {repulsion_weight} and {repulsion_margin}",
                              "task.params.repulsion_weight")
        self.objective = get_objective(loss, repulsion_weight, repulsion_margin)
        self.adversarial_weight = as_schedule(adversarial_weight,
                                              "task.params.adversarial_weight")
        self.feature_matching_weight = as_schedule(feature_matching_weight,
                                                   "task.params.feature_matching_weight")
        self.warmup_steps, self.d_update_every = int(warmup_steps), int(d_update_every)
        self.d_lr, self.random_discriminator = d_lr, bool(random_discriminator)

    # -- construction -------------------------------------------------------------------
    def build_discriminators(self) -> DiscriminatorList:
        refs = self.cfg.model.discriminators
        if not refs:
            raise ValueError("the adversarial task needs at least one entry in "
                             "model.discriminators")
        ctx = {"channels": self.cfg.data.channels, "sample_rate": self.cfg.data.sample_rate}
        discriminators = DiscriminatorList(self.build(
            ref, "discriminator", f"model.discriminators[{i}]", **ctx)
            for i, ref in enumerate(refs))
        init = self.cfg.model.init
        if self.cfg.train.init_discriminators and init:  # fine-tuning: continue against them
            from audio_core.engine.export import init_discriminators

            init_discriminators(discriminators, init, self.cfg)
        return discriminators

    def build_modules(self) -> dict[str, nn.Module]:
        modules = super().build_modules()
        return {**modules, "discriminator": self.build_discriminators()}

    def optimizer_config(self, role: str) -> OptimizerConfig:
        base = self.cfg.train.optimizer
        return attrs.evolve(base, lr=self.d_lr) if role == "discriminator" and \
            self.d_lr is not None else base

    # -- schedule (functions of the step number only: identical on every rank) ----------
    def adversarial_active(self, step: int) -> bool:
        return step >= self.warmup_steps

    def discriminator_active(self, step: int) -> bool:
        return self.adversarial_active(step) and step % self.d_update_every == 0

    def discriminator_index(self, step: int) -> int | None:
        """The discriminator trained against at ``step`` (``None``: all of them)."""
        if not self.random_discriminator:
            return None
        return random.Random(self.cfg.run.seed * 1_000_003 + step).randrange(
            len(self.cfg.model.discriminators))

    # -- the step -------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        g, d = self.engines["generator"], self.engines["discriminator"]
        audio, mask = self.input_audio(batch), batch.get("mask")
        index = self.discriminator_index(step)
        out = g(audio)
        fake = out.reconstruction
        loss, logs = reconstruction_objective(self.losses, out, audio, mask, step=step)
        checks = [loss]

        d_on = self.discriminator_active(step)
        with frozen(g, d_on):
            if d_on:
                real_logits, fake_logits, _, _ = split_halves(
                    d(torch.cat([audio, fake.detach()]).to(d.dtype), index=index))
                d_loss, d_parts = self.objective.discriminator_terms(real_logits, fake_logits)
                checks.append(d_loss)
                logs.update({f"discriminator/{k}": v for k, v in d_parts.items()})
                logs.update({"loss/discriminator": d_loss.detach(),
                             "discriminator/real": torch.stack(
                                 [r.detach().float().mean() for r in real_logits]).mean(),
                             "discriminator/fake": torch.stack(
                                 [f.detach().float().mean() for f in fake_logits]).mean()})
            if not all_finite(*checks):
                return {"loss/total": loss.detach(), "skipped": torch.tensor(1.0), **logs}
            if d_on:
                d.backward(d_loss)
                d.step()

        adv_on = self.adversarial_active(step)
        with frozen(d, adv_on):
            if adv_on:
                loss, extra = self.with_adversarial_terms(d, audio, fake, loss, index, step)
                logs.update(extra)
            g.backward(loss)
            g.step()
        return {"loss/total": loss.detach(), "skipped": torch.tensor(0.0), **logs}

    def with_adversarial_terms(self, d: Any, audio: Tensor, fake: Tensor, loss: Tensor,
                               index: int | None, step: int = 0
                               ) -> tuple[Tensor, dict[str, Tensor]]:
        """``loss`` plus the weighted adversarial and feature-matching terms (D frozen);
        unchanged, with ``adversarial_dropped`` logged, if those are non-finite anywhere."""
        # D's raw module, not its engine: DeepSpeed hooks an engine's outputs so that a
        # backward through them runs that engine's backward prologue (and divides by its
        # accumulation steps), which must not happen inside G's backward.
        with d.autocast():
            outputs = d.module(torch.cat([audio, fake]).to(d.dtype), index=index)
        _, fake_logits, real_feats, fake_feats = split_halves(outputs)
        adv = self.objective.generator(fake_logits)
        fm = feature_matching_loss(real_feats, fake_feats) if fake_feats else adv.new_zeros(())
        adv_w, fm_w = self.adversarial_weight(step), self.feature_matching_weight(step)
        extra = adv_w * adv + fm_w * fm
        finite = all_finite(extra)
        logs = {"loss/adversarial": adv.detach(), "loss/feature_matching": fm.detach(),
                "adversarial_dropped": torch.tensor(0.0 if finite else 1.0),
                "weight/adversarial": torch.tensor(adv_w),
                "weight/feature_matching": torch.tensor(fm_w)}
        return (loss + extra if finite else loss), logs
