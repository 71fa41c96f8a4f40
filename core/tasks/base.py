"""The task contract.

A task is built through the registry as ``Task(cfg=..., registry=..., **params)``. The
trainer then:

1. calls :meth:`Task.build_modules` for the trainable module of each role in
   :attr:`Task.roles` (frozen parts stay on the task, outside every engine);
2. wraps each module in an :class:`~audio_core.engine.engine.Engine` and calls
   :meth:`Task.attach`;
3. calls :meth:`Task.train_step` once per micro-batch. A step uses :meth:`Task.optimize`
   for each engine it updates, so that a non-finite loss is skipped on every rank at once
   (each rank must make the same sequence of engine calls);
4. calls :meth:`Task.validation_step` for reconstructions to score, and
   :meth:`Task.export_module` for what ``audio-core export`` writes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from audio_core.config.build import build_component
from audio_core.config.schema import ComponentConfig, OptimizerConfig, RunConfig


class Task:
    """Base class of every task. Subclasses set :attr:`roles` and implement the steps."""

    #: Engine roles, in the order the trainer creates them. The first one is exported.
    roles: tuple[str, ...] = ("generator",)

    def __init__(self, *, cfg: RunConfig, registry: Any) -> None:
        self.cfg, self.registry = cfg, registry
        self.engines: dict[str, Any] = {}

    # -- construction -------------------------------------------------------------------
    def build(self, ref: ComponentConfig | None, kind: str, path: str, **context: Any) -> Any:
        """Build a component named in the config (``None`` stays ``None``)."""
        if ref is None:
            return None
        return build_component(ref, kind, path, registry=self.registry, context=context)

    def build_modules(self) -> dict[str, nn.Module]:
        """The trainable module of each role."""
        raise NotImplementedError

    def build_export_module(self) -> nn.Module:
        """A fresh (untrained) instance of what :meth:`export_module` returns, for loading."""
        return self.build_modules()[self.roles[0]]

    def optimizer_config(self, role: str) -> OptimizerConfig:
        """Optimizer settings of ``role``; defaults to ``train.optimizer``."""
        return self.cfg.train.optimizer

    def attach(self, engines: dict[str, Any]) -> None:
        self.engines = engines

    # -- steps ------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        """One micro-batch. Returns scalars to log; ``"skipped"`` > 0 if a loss was non-finite."""
        raise NotImplementedError

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> Tensor | None:
        """Reconstruction ``(batch, channels, time)`` of ``batch["audio"]``, or ``None``."""
        return None

    def validation_logs(self) -> dict[str, float]:
        """Extra validation metrics gathered by :meth:`validation_step` since the last call
        (e.g. spectrogram errors), averaged over ranks. Collective: every rank calls it once
        per validation, after the last batch."""
        return {}

    def export_module(self) -> nn.Module:
        """The module ``audio-core export`` writes (by default the first role's)."""
        return self.engines[self.roles[0]].module

    # -- helpers ------------------------------------------------------------------------
    def input_audio(self, batch: dict[str, Any], role: str | None = None) -> Tensor:
        """``batch["audio"]`` on the engine's device and dtype."""
        engine = self.engines[role or self.roles[0]]
        return batch["audio"].to(device=engine.device, dtype=engine.dtype)

    def optimize(self, role: str, loss: Tensor) -> bool:
        """Backward and step ``role``'s engine unless ``loss`` is non-finite on any rank.

        The decision is all-reduced, so every rank skips together. Returns ``True`` when
        the loss was used.
        """
        bad = torch.tensor([0.0 if torch.isfinite(loss.detach()).all() else 1.0],
                           device=loss.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        if bad.item() > 0:
            return False
        engine = self.engines[role]
        engine.backward(loss)
        engine.step()
        return True


def weighted_losses(losses: list[tuple[nn.Module, float]], estimate: Tensor, reference: Tensor,
                    mask: Tensor | None, output: Any = None) -> tuple[Tensor, dict[str, Tensor]]:
    """Sum of ``weight * loss(estimate, reference, mask)`` and each part, for logging.

    Spectral losses compute in fp32: inputs are cast before the call. A loss with
    ``wants_output = True`` is also given the model's whole ``output`` record (keyword
    ``output``), e.g. to read ``output.intermediates``.
    """
    total = estimate.new_zeros((), dtype=torch.float32)
    logs: dict[str, Tensor] = {}
    for loss, weight in losses:
        extra = {"output": output} if getattr(loss, "wants_output", False) else {}
        out = loss(estimate.float(), reference.float(), mask, **extra)
        name = getattr(loss, "name", type(loss).__name__.lower())
        total = total + weight * out.value
        logs[f"loss/{name}"] = out.value.detach()
        logs.update({f"loss/{name}_{k}": v.detach() for k, v in out.parts.items()})
    return total, logs


def reconstruction_objective(losses: list[tuple[nn.Module, float]], output: Any, audio: Tensor,
                             mask: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted ``losses`` of ``output.reconstruction`` against ``audio``, plus the loss and
    metrics of ``output.quantized`` (when the model has a quantizer)."""
    loss, logs = weighted_losses(losses, output.reconstruction, audio, mask, output)
    quantized = output.quantized
    if quantized is not None:
        loss = loss + quantized.loss.float()
        logs["loss/quantizer"] = quantized.loss.detach().float()
        logs.update({f"quantizer/{k}": v for k, v in quantized.metrics.items()})
    return loss, logs
