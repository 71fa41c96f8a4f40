"""The training loop: data, task, engines, EMA, validation, logging, checkpoints, signals.

``Trainer(cfg).fit()`` runs ``train.max_steps`` optimizer steps. One optimizer step is
``train.grad_accum`` micro-batches whose loss was finite; a non-finite loss skips its
micro-batch on every rank together, and ``train.nan_tolerance`` of them in a row stop the
run with a message naming the last good checkpoint. SIGTERM/SIGINT make every rank save a
checkpoint at the next step boundary and exit; ``resume=RUN_DIR`` continues from its newest
checkpoint exactly (same batches, same RNG).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from audio_core import distributed
from audio_core.config.build import build_dataset
from audio_core.config.loader import save_config, to_yaml
from audio_core.config.schema import RunConfig
from audio_core.data.loader import make_dataloader
from audio_core.data.report import ERRORS_FILE, ReportsToFile, report_run_datasets
from audio_core.engine.device import pin_memory
from audio_core.engine.ema import EMA
from audio_core.engine.engine import Engine
from audio_core.errors import AudioCoreError, ConfigError
from audio_core.models.build import DEFAULT_TASK
from audio_core.storage.checkpoint import BEST, CheckpointManager, rng_state, set_rng_state
from audio_core.storage.weights_check import check_resume_config

log = logging.getLogger("audio_core")



class TrainingStopped(AudioCoreError):
    """The run cannot continue (e.g. repeated non-finite losses)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_dir_of(cfg: RunConfig) -> Path:
    return Path(cfg.run.output_dir) / cfg.run.name


class Trainer:
    """Builds everything a run needs from ``cfg`` and trains it; see the module docstring."""

    def __init__(self, cfg: RunConfig, *, run_dir: str | Path | None = None,
                 resume: bool = False, registry: Any = None) -> None:
        if registry is None:
            from audio_core.plugins import get_registry

            registry = get_registry()
        self.cfg, self.registry, self.resume = cfg, registry, resume
        self.run_dir = Path(run_dir) if run_dir is not None else run_dir_of(cfg)
        self.step = 0
        self._stop_signal: int | None = None
        self._nan_streak = 0
        self._saved_step: int | None = None  # step of the newest checkpoint this run has
        self._ready = False
        #: ``{metric, value, step, mode}`` of ``RUN/checkpoints/best`` (trainer state)
        self.best: dict[str, Any] | None = None

    # -- setup --------------------------------------------------------------------------
    def setup(self) -> None:
        """Build data, task, engines and trackers (restoring the newest checkpoint when
        resuming). :meth:`fit` calls it; calling it first (to inspect the engines) is fine,
        the second call does nothing."""
        if self._ready:
            return
        cfg = self.cfg
        # rank and world size from the launcher's environment (a plain run: 0 of 1): the data
        # is built before the process group starts, so a bad data path fails in seconds,
        # not after DeepSpeed has compiled its comm op and the model is built
        self.rank, self.world = distributed.rank(), distributed.world_size()
        seed_everything(cfg.run.seed + self.rank)
        self._build_data()
        distributed.init_distributed()
        if distributed.is_main_process():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
        distributed.barrier()
        report_run_datasets(self)  # RUN_DIR/bad_files.json

        self.task = build_task(cfg, self.registry)
        modules = self.task.build_modules()
        self.engines = {role: Engine.from_config(role, modules[role], cfg,
                                                 self.task.optimizer_config(role))
                        for role in self.task.roles}
        self.task.attach(self.engines)
        exported = self.task.roles[0]
        self.ema = EMA(self.engines[exported], cfg.train.ema_decay) \
            if cfg.train.ema_decay > 0 else None
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints",
                                             cfg.train.keep_checkpoints)
        restored = None
        if self.resume:
            self._restore()
            restored = rng_state()
        self._build_tracking()
        if restored is not None:  # whatever tracker set-up drew, training continues exactly
            set_rng_state(restored)
        self._ready = True

    def _build_data(self) -> None:
        """The training (and validation) datasets and their loaders."""
        cfg = self.cfg
        self.train_set = build_dataset(cfg, "train", registry=self.registry)
        if isinstance(self.train_set, ReportsToFile):  # unreadable samples, from any worker
            self.train_set.set_report_file(self.run_dir / ERRORS_FILE)
        self.loader = make_dataloader(
            self.train_set, batch_size=cfg.data.batch_size, seed=cfg.run.seed, rank=self.rank,
            world_size=self.world, num_workers=cfg.data.num_workers, shuffle=True,
            drop_last=True, pin_memory=pin_memory())
        self.val_loader = None
        if cfg.train.best_metric and (cfg.data.val is None or cfg.train.val_every == 0):
            log.warning("train.best_metric=%s is ignored: validation is off (set data.val "
                        "and train.val_every > 0 to keep the best checkpoint)",
                        cfg.train.best_metric)
        if cfg.data.val is not None and cfg.train.val_every > 0:
            val_set = build_dataset(cfg, "val", registry=self.registry)
            self.val_loader = make_dataloader(
                val_set, batch_size=cfg.data.batch_size, seed=cfg.run.seed, rank=self.rank,
                world_size=self.world, num_workers=0, shuffle=False, drop_last=False)
            self._val_start = self.val_loader.state_dict()

    def _restore(self) -> None:
        path = self.checkpoints.latest()
        if path is None:
            raise AudioCoreError(f"--resume: no checkpoint under {self.checkpoints.root}")
        check_resume_config(path, self.cfg)  # same model as the checkpoint's, or a clear error
        state = self.checkpoints.load(path, self.engines)
        self.step = self._saved_step = int(state["step"])
        best = state.get("best")  # kept only while it ranks the same metric the same way
        if best and best.get("metric") == self.cfg.train.best_metric and best.get("mode") \
                == best_mode(best["metric"], self.cfg.train.best_mode):
            self.best = best
        self.loader.load_state_dict(state["loader"])
        if self.ema is not None:
            self.ema.load_state_dict(CheckpointManager.load_tensors(path, "ema.safetensors"),
                                     int(state.get("ema_updates", 0)))
        log.info("resumed from %s at step %d", path, self.step)

    def _build_tracking(self) -> None:
        from audio_core.tracking import ProgressBar, build_tracker

        self.tracker = build_tracker(self.run_dir, backends=tuple(self.cfg.train.trackers),
                                     rank=self.rank, run_name=self.cfg.run.name,
                                     config_dict=attrs.asdict(self.cfg))
        self.progress = ProgressBar(self.cfg.train.max_steps, initial_step=self.step,
                                    disable=not distributed.is_main_process(),
                                    unit=throughput_unit(self.train_set)[0])

    # -- the loop -----------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Train to ``train.max_steps``; returns the last logged metrics."""
        self.setup()
        previous = self._install_signal_handlers()
        last: dict[str, float] = {}
        try:
            batches = self._batches()
            unit, per_item = throughput_unit(self.train_set)
            items_per_step = self.cfg.data.batch_size * self.cfg.train.grad_accum * self.world
            while self.step < self.cfg.train.max_steps:
                started = time.perf_counter()
                self.task.set_step(self.step)
                logs = self._optimizer_step(batches)
                self.step += 1
                if self.ema is not None and self.ema.engine.last_step_applied:
                    self.ema.update()  # not after an fp16-overflow step: nothing changed
                amount = items_per_step * per_item
                logs[f"throughput/{unit}_per_s"] = (
                    amount / max(time.perf_counter() - started, 1e-9))
                self.progress.update(self.step, loss=logs.get("loss/total"), amount=amount)
                if self.step % self.cfg.train.log_every == 0 or self.step == 1:
                    last = logs
                    self.tracker.log_metrics(logs, self.step)
                if self._due(self.cfg.train.val_every):
                    self.validate()
                stop = self._should_stop()
                if self._due(self.cfg.train.checkpoint_every) or stop:
                    self.save()
                if stop:
                    log.warning("received signal %s: checkpoint saved at step %d, stopping",
                                self._stop_signal, self.step)
                    break
            else:
                if self._saved_step != self.step:  # e.g. resuming a finished run: no re-save
                    self.save()
        finally:
            self._restore_signal_handlers(previous)
            self.progress.close()
            self.tracker.close()
        return last

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _batches(self) -> Iterator[dict[str, Any]]:
        while True:
            yield from self.loader

    def _optimizer_step(self, batches: Iterator[dict[str, Any]]) -> dict[str, float]:
        """``grad_accum`` good micro-batches; averages their logs."""
        totals: dict[str, float] = {}
        good = 0
        while good < self.cfg.train.grad_accum:
            batch = next(batches)
            if self.cfg.train.log_examples:
                self._log_examples(batch)
            logs = self.task.train_step(batch, self.step)
            if float(logs.pop("skipped", 0.0)) > 0:
                self._nan_streak += 1
                step = self.step + 1  # the optimizer step being assembled (logs are 1-based)
                log.warning("step %d: non-finite loss, micro-batch skipped (%d in a row)",
                            step, self._nan_streak)
                self.tracker.log_metrics({"nan_skipped": float(self._nan_streak)}, step)
                if self._nan_streak >= self.cfg.train.nan_tolerance:
                    latest = self.checkpoints.latest()
                    raise TrainingStopped(
                        f"{self._nan_streak} non-finite losses in a row at step {step}; "
                        f"last good checkpoint: {latest or 'none yet'}. Lower the learning "
                        f"rate or check the data, then resume with --resume {self.run_dir}")
                continue
            self._nan_streak = 0
            good += 1
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + float(value)
        out = {k: v / good for k, v in totals.items()}
        out.update({f"lr/{role}": e.lr for role, e in self.engines.items()})
        out.update({f"loss_scale/{role}": e.loss_scale for role, e in self.engines.items()
                    if e.loss_scale is not None})  # fp16 only
        return out

    def _log_examples(self, batch: dict[str, Any]) -> None:
        """Append this micro-batch's examples to ``RUN/examples/rank_NNNNN.jsonl``."""
        folder = self.run_dir / "examples"
        folder.mkdir(exist_ok=True)
        offsets = batch.get("offset")
        line = {"step": self.step + 1, "paths": list(batch.get("path", [])),
                "offsets": offsets.tolist() if isinstance(offsets, torch.Tensor) else []}
        with (folder / f"rank_{self.rank:05d}.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    # -- validation -----------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The task's validation metrics (:meth:`Task.evaluate`) over the first
        ``train.val_batches`` batches of ``data.val`` per rank (the same ones each time),
        logged as ``val/<name>``; then the best checkpoint is updated
        (``train.best_metric``). Training's random number streams are left as they were."""
        if self.val_loader is None:
            return {}
        limit = self.cfg.train.val_batches or None
        self.val_loader.load_state_dict(self._val_start)  # the same clips every time
        batches = itertools.islice(iter(self.val_loader), limit)
        for engine in self.engines.values():
            engine.eval()
        with torch.random.fork_rng():
            try:
                found = self.task.evaluate(batches, self._log_audio)
            finally:
                for engine in self.engines.values():
                    engine.train()
        metrics = {f"val/{k}": float(v) for k, v in found.items()}
        self.tracker.log_metrics(metrics, self.step)
        self.progress.message(f"step {self.step} " + format_metrics(metrics))
        self._update_best(metrics)
        return metrics

    def _log_audio(self, name: str, audio: torch.Tensor, sample_rate: int) -> None:
        self.tracker.log_audio(name, audio, sample_rate, self.step)

    def _update_best(self, metrics: dict[str, float]) -> None:
        """Keep ``RUN/checkpoints/best`` when ``train.best_metric`` improved (collective:
        the metrics are the same on every rank, so every rank decides alike)."""
        name = self.cfg.train.best_metric
        if not name:
            return
        if name not in metrics:
            raise ConfigError(f"train.best_metric: '{name}' is not logged by validation; it "
                              f"logs {sorted(metrics) or 'nothing'}", "train.best_metric")
        value = metrics[name]
        mode = best_mode(name, self.cfg.train.best_mode)
        if not improves(value, self.best, mode):
            return
        self.best = {"metric": name, "value": value, "step": self.step, "mode": mode}
        exported = self.engines[self.task.roles[0]]
        model = exported.full_state_dict()
        ema = self.ema.full_state_dict(model) if self.ema is not None else None
        main = distributed.is_main_process()
        self.checkpoints.save_best(self.step, list(self.engines),
                                   {"config": to_yaml(self.cfg), "best": self.best},
                                   model=model if main else None, ema=ema if main else None)
        log.info("step %d: best %s %.4g, saved in %s", self.step, name, value,
                 self.checkpoints.root / BEST)

    # -- checkpoints ----------------------------------------------------------------------
    def save(self) -> Path:
        exported = self.engines[self.task.roles[0]]
        model = exported.full_state_dict()
        ema = self.ema.full_state_dict(model) if self.ema is not None else None
        state = {"loader": self.loader.state_dict(), "config": to_yaml(self.cfg),
                 "ema_updates": self.ema.updates if self.ema is not None else 0,
                 "best": self.best}
        # the other roles' weights (discriminators) consolidated too, for `export
        # --with-discriminators` (collective under ZeRO-3, so every rank gathers)
        parts = {f"{role}.safetensors": self.engines[role].full_state_dict()
                 for role in self.task.roles[1:]}
        main = distributed.is_main_process()
        path = self.checkpoints.save(self.step, self.engines, state,
                                     model=model if main else None,
                                     ema=ema if main else None, parts=parts if main else None)
        self._saved_step = self.step
        report_run_datasets(self)  # files that failed to load since the last report
        if distributed.is_main_process():
            self.tracker.log_artifact(path / "model.safetensors")
        return path

    # -- signals --------------------------------------------------------------------------
    def _install_signal_handlers(self) -> dict[int, Any]:
        def handler(signum, _frame):
            self._stop_signal = signum

        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                previous[sig] = signal.signal(sig, handler)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    @property
    def stopped_by_signal(self) -> bool:
        """True when :meth:`fit` ended early on SIGTERM/SIGINT (after saving a checkpoint)."""
        return self._stop_signal is not None

    def _should_stop(self) -> bool:
        """True on every rank once any rank got SIGTERM/SIGINT."""
        flag = torch.tensor([1.0 if self._stop_signal is not None else 0.0])
        distributed.all_reduce_max_(flag)
        if flag.item() > 0 and self._stop_signal is None:
            self._stop_signal = signal.SIGTERM
        return flag.item() > 0


#: Words in a metric name for which larger is better (``best_mode: auto``).
LARGER_IS_BETTER = ("accuracy", "si_sdr", "sdr", "snr", "pesq", "stoi", "dnsmos", "psnr")


def best_mode(name: str, mode: str = "auto") -> str:
    """``min`` or ``max``: ``mode`` unless ``auto``, then ``max`` for names holding a word of
    :data:`LARGER_IS_BETTER` (``val/class_accuracy``), else ``min`` (``val/fad``)."""
    if mode != "auto":
        return mode
    leaf = name.rsplit("/", 1)[-1]
    return "max" if any(word in leaf for word in LARGER_IS_BETTER) else "min"


def improves(value: float, best: dict[str, Any] | None, mode: str) -> bool:
    """True when finite ``value`` beats ``best["value"]`` (or there is no best yet)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best["value"] if mode == "max" else value < best["value"]


def format_metrics(metrics: dict[str, float]) -> str:
    """``val/mel_distance 1.23 | val/si_sdr -4.5``: a console line of metrics."""
    return " | ".join(f"{name} {float(value):.4g}" for name, value in metrics.items())


def throughput_unit(dataset: Any) -> tuple[str, float]:
    """``(unit, amount per item)`` a dataset declares (``units_per_item`` of the
    :class:`~audio_core.contracts.components.Dataset` contract), e.g. ``("audio_s", 1.0)`` for
    one-second crops; ``("items", 1.0)`` when it declares none."""
    declared = dataset.units_per_item
    if declared is None:
        return "items", 1.0
    unit, amount = declared
    return str(unit), float(amount)


def build_task(cfg: RunConfig, registry: Any):
    """The task named by ``cfg.task`` (default ``core.autoencoder``)."""
    name = cfg.task.name if cfg.task is not None else DEFAULT_TASK
    params = cfg.task.params if cfg.task is not None else {}
    return registry.build("task", name, params, path="task",
                          context={"cfg": cfg, "registry": registry})
