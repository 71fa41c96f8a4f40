"""The task contract: how one training step is computed over a model.

A task trains a *model* (:mod:`audio_core.models`): it is not the model. It is built through
the registry as ``Task(cfg=..., registry=..., **params)``; the class declares the model it
trains (:attr:`Task.model_type`, unless ``model.type`` says otherwise) and the training parts
it builds (:attr:`Task.slots`: losses, discriminators). The trainer then:

1. calls :meth:`Task.build_modules` for the trainable module of each role in
   :attr:`Task.roles`; the first role's module is the model (what is exported);
2. wraps each module in an :class:`~audio_core.engine.engine.Engine` and calls
   :meth:`Task.attach`;
3. before each optimizer step calls :meth:`Task.set_step` (scheduled weights), then
   :meth:`Task.train_step` once per micro-batch. A step uses :meth:`Task.optimize` for each
   engine it updates, so that a non-finite loss is skipped on every rank at once (each rank
   must make the same sequence of engine calls);
4. every ``train.val_every`` steps calls :meth:`Task.evaluate` on the validation batches:
   the task decides what validation computes (reconstruction metrics by default, FAD and
   class accuracy of sampled clips for generators); the trainer logs them as ``val/<name>``
   and keeps the best checkpoint by ``train.best_metric``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from audio_core.config.build import build_component
from audio_core.config.schema import ComponentConfig, OptimizerConfig, RunConfig
from audio_core.contracts.components import Scheduled
from audio_core.distributed import all_finite
from audio_core.schedules import Schedule, as_schedule


class Task:
    """Base class of every task. Subclasses set :attr:`roles` and implement the steps."""

    #: Engine roles, in the order the trainer creates them. The first one is the model.
    roles: tuple[str, ...] = ("generator",)
    #: The registered model this task trains (``model.type`` overrides it).
    model_type: ClassVar[str | None] = None
    #: ``model.<slot>`` training parts this task builds (True: required).
    slots: ClassVar[dict[str, bool]] = {}
    #: Losses and their weights (autoencoder tasks set them from :meth:`build_losses`);
    #: outside the engines, so :meth:`set_step` reaches them here.
    losses: Sequence[tuple[nn.Module, Schedule]] = ()

    def __init__(self, *, cfg: RunConfig, registry: Any) -> None:
        self.cfg, self.registry = cfg, registry
        self.engines: dict[str, Any] = {}
        self.step = 0

    # -- construction -------------------------------------------------------------------
    def build(self, ref: ComponentConfig | None, kind: str, path: str, **context: Any) -> Any:
        """Build a component named in the config (``None`` stays ``None``)."""
        if ref is None:
            return None
        return build_component(ref, kind, path, registry=self.registry, context=context)

    def build_model(self) -> nn.Module:
        """The model this task trains, built by its own class (never by the task), with
        the weights of ``model.init`` when set (a resumed run then loads its checkpoint
        over them)."""
        from audio_core.models.build import build_model

        if self.cfg.train.init_discriminators:
            check_init_discriminators(self.cfg, self.roles)
        model = build_model(self.cfg, self.registry)
        if self.cfg.model.init:  # fine-tuning: start from an export's weights
            from audio_core.engine.export import init_from

            init_from(model, self.cfg.model.init, self.cfg)
        return model

    def build_losses(self) -> list[tuple[nn.Module, Schedule]]:
        """``model.losses`` with their (scheduled) weights."""
        if not self.cfg.model.losses:
            raise ValueError(f"the {type(self).__name__} task needs at least one entry in "
                             f"model.losses")
        ctx = {"sample_rate": self.cfg.data.sample_rate}
        return [(self.build(ref, "loss", f"model.losses[{i}]", **ctx),
                 as_schedule(ref.weight, f"model.losses[{i}].weight"))
                for i, ref in enumerate(self.cfg.model.losses)]

    def build_modules(self) -> dict[str, nn.Module]:
        """The trainable module of each role; the first is the model."""
        raise NotImplementedError

    def optimizer_config(self, role: str) -> OptimizerConfig:
        """Optimizer settings of ``role``; defaults to ``train.optimizer``."""
        return self.cfg.train.optimizer

    def attach(self, engines: dict[str, Any]) -> None:
        self.engines = engines

    @property
    def model(self) -> nn.Module:
        """The model being trained (the first role's raw module)."""
        return self.engines[self.roles[0]].module

    # -- steps ------------------------------------------------------------------------------
    def set_step(self, step: int) -> None:
        """The optimizer step about to run: passed to every component with scheduled
        weights (``set_step``), in every engine and among the losses."""
        self.step = int(step)
        modules = [e.module for e in self.engines.values()]
        modules += [loss for loss, _ in self.losses]
        for root in modules:
            for module in root.modules():
                if isinstance(module, Scheduled):
                    module.set_step(self.step)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        """One micro-batch. Returns scalars to log; ``"skipped"`` > 0 if a loss was non-finite."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, batches: Iterable[dict[str, Any]],
                 log_audio: Callable[[str, Tensor, int], None]) -> dict[str, float]:
        """Validation metrics over ``batches`` (this rank's shard of ``data.val``), the same
        on every rank (collective: every rank calls it once per validation). The default
        scores :meth:`validation_step` reconstructions against ``batch["audio"]``
        (:func:`~audio_core.tasks.evaluation.evaluate_reconstruction`); ``log_audio(name,
        audio (channels, time), sample_rate)`` writes an audio example."""
        from audio_core.tasks.evaluation import evaluate_reconstruction

        return evaluate_reconstruction(self, batches, log_audio)

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> Tensor | None:
        """Reconstruction ``(batch, channels, time)`` of ``batch["audio"]``, or ``None``."""
        return None

    def validation_logs(self) -> dict[str, float]:
        """Extra validation metrics gathered by :meth:`validation_step` since the last call
        (e.g. spectrogram errors), averaged over ranks. Collective: every rank calls it once
        per validation, after the last batch."""
        return {}

    # -- helpers ------------------------------------------------------------------------
    def input_audio(self, batch: dict[str, Any], role: str | None = None) -> Tensor:
        """``batch["audio"]`` on the engine's device and dtype (an asynchronous copy from
        pinned memory on CUDA)."""
        if "audio" not in batch:
            raise KeyError(f"the {type(self).__name__} task trains on audio, but the dataset "
                           f"yields {sorted(batch)}")
        engine = self.engines[role or self.roles[0]]
        return batch["audio"].to(device=engine.device, dtype=engine.dtype, non_blocking=True)

    def optimize(self, role: str, loss: Tensor) -> bool:
        """Backward and step ``role``'s engine unless ``loss`` is non-finite on any rank.

        The decision is all-reduced, so every rank skips together. Returns ``True`` when
        the loss was used.
        """
        if not all_finite(loss):
            return False
        engine = self.engines[role]
        engine.backward(loss)
        engine.step()
        return True


def check_init_discriminators(cfg: RunConfig, roles: Sequence[str]) -> None:
    """``train.init_discriminators`` needs ``model.init`` and a task with discriminators."""
    from audio_core.errors import ConfigError

    if not cfg.model.init:
        raise ConfigError("train.init_discriminators=true needs model.init=EXPORT_OR_RUN (the "
                          "export or run whose discriminators to start from)",
                          "train.init_discriminators")
    if "discriminator" not in roles:
        raise ConfigError(f"train.init_discriminators=true: the task trains {list(roles)}, "
                          f"no discriminators (use an adversarial task)",
                          "train.init_discriminators")


def weighted_losses(losses: Sequence[tuple[nn.Module, Schedule | float]], estimate: Tensor,
                    reference: Tensor, mask: Tensor | None, output: Any = None, *,
                    step: int = 0) -> tuple[Tensor, dict[str, Tensor]]:
    """Sum of ``weight(step) * loss(estimate, reference, mask)`` and each part, for logging
    (scheduled weights are logged as ``weight/<name>``). Each loss follows the
    :class:`~audio_core.contracts.components.Loss` contract.

    Spectral losses compute in fp32: inputs are cast before the call. A loss with
    ``wants_output = True`` is also given the model's whole ``output`` record (keyword
    ``output``), e.g. to read ``output.intermediates``.
    """
    total = estimate.new_zeros((), dtype=torch.float32)
    logs: dict[str, Tensor] = {}
    for loss, given in losses:
        weight = as_schedule(given)
        extra = {"output": output} if loss.wants_output else {}
        out = loss(estimate.float(), reference.float(), mask, **extra)
        name = loss.name
        value = weight(step)
        total = total + value * out.value
        logs[f"loss/{name}"] = out.value.detach()
        logs.update({f"loss/{name}_{k}": v.detach() for k, v in out.parts.items()})
        if not weight.constant:
            logs[f"weight/{name}"] = torch.tensor(value)
    return total, logs


def reconstruction_objective(losses: Sequence[tuple[nn.Module, Schedule | float]],
                             output: Any,
                             audio: Tensor, mask: Tensor | None, *, step: int = 0
                             ) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted ``losses`` of ``output.reconstruction`` against ``audio``, plus the loss and
    metrics of ``output.quantized`` (when the model has a quantizer)."""
    loss, logs = weighted_losses(losses, output.reconstruction, audio, mask, output, step=step)
    quantized = output.quantized
    if quantized is not None:
        loss = loss + quantized.loss.float()
        logs["loss/quantizer"] = quantized.loss.detach().float()
        logs.update({f"quantizer/{k}": v for k, v in quantized.metrics.items()})
    return loss, logs
