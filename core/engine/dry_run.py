"""``audio-core config validate``: build and check everything ``train`` builds, without
training.

:func:`check_run_config` goes through what :class:`~audio_core.engine.trainer.Trainer`
builds before its first step, in the same order and through the same public entry points,
so a config it passes does not crash ``train`` on setup:

1. the task and its trainable modules (``build_task(cfg, registry).build_modules()``):
   every component factory runs with its params (a negative width fails here);
2. the datasets (``build_dataset(cfg, split)``) and that ``data.train`` holds at least one
   full batch per rank;
3. each engine role's DeepSpeed config (``build_ds_config``), and that this machine runs
   its precision;
4. the tracking backends named in ``train.trackers``.

With ``step=True`` it also runs the task's training step on one real batch, at step 0 and
at the last step (both sides of any warm-up), with a plain-PyTorch stand-in for the
DeepSpeed engines; nothing is saved. Every failure is a :class:`ConfigError` naming what
failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import attrs
import torch
from torch import nn

from audio_core.config.schema import RunConfig
from audio_core.errors import AudioCoreError, ConfigError


@attrs.define
class DryRunReport:
    """What :func:`check_run_config` built: roles with parameter counts, dataset sizes."""

    roles: dict[str, int] = attrs.field(factory=dict)
    datasets: dict[str, int] = attrs.field(factory=dict)
    trackers: list[str] = attrs.field(factory=list)
    steps: list[int] = attrs.field(factory=list)

    def summary(self) -> str:
        roles = ", ".join(f"{r} ({n:,} parameters)" for r, n in self.roles.items())
        data = ", ".join(f"{s}: {n} items" for s, n in self.datasets.items())
        done = f"; training step ran at step(s) {self.steps}" if self.steps else ""
        return f"built {roles}; {data}; trackers: {', '.join(self.trackers) or 'none'}{done}"


@contextlib.contextmanager
def _stage(what: str, path: str | None = None) -> Iterator[None]:
    """Turn a non-audio-core exception raised while doing ``what`` into a ConfigError."""
    try:
        yield
    except AudioCoreError:
        raise
    except Exception as exc:
        raise ConfigError(f"{what} failed: {type(exc).__name__}: {exc}", path) from exc


def check_run_config(cfg: RunConfig, registry: Any = None, *, world_size: int = 1,
                     step: bool = False) -> DryRunReport:
    """Build what ``audio-core train`` builds for ``cfg`` on ``world_size`` ranks and check
    it (see the module docstring); returns a report, or raises :class:`ConfigError`."""
    from audio_core.config.build import build_dataset
    from audio_core.engine.ds_config import build_ds_config
    from audio_core.engine.trainer import build_task

    if registry is None:
        from audio_core.plugins import get_registry

        registry = get_registry()
    report = DryRunReport()
    with torch.random.fork_rng(), _stage("building the task and its modules", "model"):
        torch.manual_seed(cfg.run.seed)
        task = build_task(cfg, registry)
        modules = task.build_modules()
    for role in task.roles:
        if role not in modules:
            raise ConfigError(f"the task declares engine role '{role}' but built no module "
                              f"for it", "task")
        report.roles[role] = sum(p.numel() for p in modules[role].parameters())

    datasets = {}
    for split in ("train", "val"):
        if getattr(cfg.data, split) is None:
            continue
        with _stage(f"building data.{split}", f"data.{split}"):
            datasets[split] = build_dataset(cfg, split, registry=registry)
            report.datasets[split] = len(datasets[split])
    needed = cfg.data.batch_size * world_size
    if report.datasets.get("train", needed) < needed:
        raise ConfigError(f"data.train has {report.datasets['train']} items, fewer than one "
                          f"batch of data.batch_size ({cfg.data.batch_size}) x {world_size} "
                          f"rank(s): training would never get a batch", "data.batch_size")

    for role in task.roles:
        ds_config = build_ds_config(cfg, world_size, role, task.optimizer_config(role))
        if ds_config.get("fp16", {}).get("enabled") or ds_config.get("bf16", {}).get("enabled"):
            from audio_core.engine.engine import check_precision

            check_precision(ds_config, role)

    from audio_core.tracking.factory import BACKENDS

    for i, name in enumerate(cfg.train.trackers):
        if name not in BACKENDS:
            raise ConfigError(f"unknown tracking backend '{name}' at train.trackers[{i}]",
                              f"train.trackers[{i}]")
    report.trackers = list(cfg.train.trackers)

    if step:
        report.steps = run_training_steps(cfg, task, modules, datasets["train"])
    return report


class PlainEngine:
    """The part of :class:`~audio_core.engine.engine.Engine` a task's step uses, on plain
    PyTorch (fp32, CPU, no optimizer): enough to run a step's forward and backward."""

    zero_stage, global_steps, lr, grad_norm = 0, 0, 0.0, None
    dtype, device = torch.float32, torch.device("cpu")

    def __init__(self, role: str, module: nn.Module) -> None:
        self.role, self.module, self.last_step_applied = role, module, False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    forward = __call__

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def is_boundary(self) -> bool:
        return True

    def step(self) -> bool:
        self.zero_grad()
        self.last_step_applied = True
        return True

    def zero_grad(self) -> None:
        self.module.zero_grad(set_to_none=True)

    def train(self, mode: bool = True) -> PlainEngine:
        self.module.train(mode)
        return self

    def eval(self) -> PlainEngine:
        return self.train(False)

    def requires_grad_(self, flag: bool = True) -> PlainEngine:
        for p in self.module.parameters():
            p.requires_grad_(flag)
        return self

    @contextlib.contextmanager
    def gathered(self) -> Iterator[nn.Module]:
        yield self.module


def run_training_steps(cfg: RunConfig, task: Any, modules: dict[str, nn.Module],
                       dataset: Any) -> list[int]:
    """The task's ``train_step`` on the first batch of ``dataset`` at step 0 and at the last
    step, with :class:`PlainEngine` stand-ins; returns the steps run."""
    from audio_core.data.loader import make_dataloader

    loader = make_dataloader(dataset, batch_size=cfg.data.batch_size, seed=cfg.run.seed,
                             num_workers=0, shuffle=False, drop_last=True)
    with _stage("reading the first batch of data.train", "data.train"):
        batch = next(iter(loader))
    task.attach({role: PlainEngine(role, modules[role]) for role in task.roles})
    steps = sorted({0, max(0, cfg.train.max_steps - 1)})
    with torch.random.fork_rng():
        torch.manual_seed(cfg.run.seed)
        for number in steps:
            with _stage(f"the training step (at step {number}) on one batch", "model"):
                logs = task.train_step(batch, number)
            if float(logs.get("skipped", 0.0)) > 0:
                raise ConfigError(f"the training step at step {number} gave a non-finite loss "
                                  f"on the first batch of data.train", "model")
    return steps
