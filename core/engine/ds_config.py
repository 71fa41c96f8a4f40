"""Per-engine DeepSpeed config dicts built from a :class:`RunConfig`.

Sources, later ones winning (mappings are merged key by key):

1. a DeepSpeed JSON named by ``deepspeed.config``: a preset name (``zero0`` ... ``zero3``,
   ``zero3_offload``), always one shipped with audio-core (:data:`PRESET_DIR`), or else a
   path to a JSON file of one's own (relative to the working directory of the call);
2. the rest of the run config's ``deepspeed`` section (plain DeepSpeed keys), plus the
   shorthands ``zero_stage`` (0-3), ``offload_optimizer`` and ``offload_param``
   (``none``/``cpu``/``nvme``);
3. ``deepspeed.roles.<role>``: keys for one engine only (e.g. a ZeRO-0 discriminator).

Then every value the run config also decides is reconciled with it: ``"auto"`` (or an
absent key) takes the run config's value; an explicit value that differs raises one
:class:`~audio_core.errors.ConfigError` listing every conflict with both keys and values.

=====================================  ==================================================
DeepSpeed key                          run-config source
=====================================  ==================================================
``train_micro_batch_size_per_gpu``     ``data.batch_size`` (micro-batch per rank)
``gradient_accumulation_steps``        ``train.grad_accum``
``train_batch_size``                   ``data.batch_size * train.grad_accum * world_size``
``gradient_clipping``                  ``train.grad_clip`` (0 disables)
``bf16.enabled`` / ``fp16.enabled``    ``train.precision`` (fp16: absent loss-scaling keys
                                       from :data:`audio_core.precision.FP16_DEFAULTS`)
``optimizer.params.*`` (if present)    ``train.optimizer.{lr,betas,eps,weight_decay}``
``scheduler.params.*`` (if present)    ``train.optimizer.{lr,warmup_steps}``, ``max_steps``
=====================================  ==================================================

Without an ``optimizer`` block the engine builds ``torch.optim.AdamW`` itself (exact, no
JIT build on CPU) and sets ``zero_allow_untested_optimizer``; with optimizer offload an
``AdamW`` block is added instead (DeepSpeed then uses ``DeepSpeedCPUAdam``). Without a
``scheduler`` block the engine passes :func:`lr_lambda` as a ``LambdaLR`` (see
:mod:`audio_core.engine.engine`).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from audio_core.config.schema import OptimizerConfig, RunConfig
from audio_core.errors import ConfigError, format_choices

AUTO = "auto"
_MISSING = object()
SHORTHANDS = ("config", "zero_stage", "offload_optimizer", "offload_param", "roles")
OFFLOAD_DEVICES = ("none", "cpu", "nvme")
#: The shipped DeepSpeed presets: the only place a preset name is looked up (a checkout's
#: ``configs/deepspeed`` is a link to this folder, not a second copy).
PRESET_DIR = Path(__file__).resolve().parents[1] / "presets" / "deepspeed"
# "auto" zero keys left to DeepSpeed's own defaults (they depend on model width).
ZERO_AUTO_DEFAULTS = ("reduce_bucket_size", "allgather_bucket_size", "stage3_prefetch_bucket_size",
                      "stage3_param_persistence_threshold", "stage3_max_live_parameters",
                      "stage3_max_reuse_distance", "sub_group_size")


def preset_names() -> list[str]:
    """Names of the shipped DeepSpeed presets (``zero0`` ... ``zero3_offload``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def resolve_ds_json(source: str | Path) -> Path:
    """The file ``deepspeed.config`` names: a shipped preset when ``source`` is a preset
    name, else the path ``source`` (a relative one taken from the current working directory,
    at the time of this call). A :class:`ConfigError` names the file that does not exist."""
    name = str(source)
    if name in preset_names():
        return PRESET_DIR / f"{name}.json"
    path = Path(name).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(f"deepspeed.config '{name}' is neither a shipped preset "
                          f"({format_choices(preset_names())}) nor a DeepSpeed JSON file: "
                          f"'{path}' {problem}", "deepspeed.config")
    return path


def read_ds_json(source: str | Path) -> dict[str, Any]:
    """A DeepSpeed JSON from a preset name or a path (see :func:`resolve_ds_json`)."""
    path = resolve_ds_json(source)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"DeepSpeed config '{path}' is not valid JSON: {exc}",
                          "deepspeed.config") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"DeepSpeed config '{path}' must hold a JSON object", "deepspeed.config")
    return data


def merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in recursively (new dict; inputs untouched)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    return out


class _Reconciler:
    """Fills ``"auto"``/missing keys of a DeepSpeed dict and records conflicts."""

    def __init__(self, ds: dict[str, Any]):
        self.ds = ds
        self.conflicts: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.ds
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def set(self, key: str, value: Any) -> None:
        *parents, leaf = key.split(".")
        node = self.ds
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    def fill(self, key: str, value: Any, source: str, *, fill_missing: bool = True,
             check: bool = True, same: Callable[[Any, Any], bool] | None = None) -> None:
        """Set ``key`` to ``value`` if it is ``"auto"`` (or absent, with ``fill_missing``);
        otherwise, with ``check``, record a conflict when it differs from ``value``."""
        current = self.get(key, _MISSING)
        if current == AUTO or (current is _MISSING and fill_missing):
            self.set(key, value)
        elif current is not _MISSING and check and not (same or _same)(current, value):
            self.conflicts.append(f"DeepSpeed '{key}' = {current!r} but {source} = {value!r}")

    def raise_conflicts(self, role: str) -> None:
        if self.conflicts:
            lines = "\n  ".join(self.conflicts)
            raise ConfigError(f"DeepSpeed config of engine '{role}' contradicts the run config:"
                              f"\n  {lines}\nset the DeepSpeed value to \"auto\" or make both "
                              f"agree", "deepspeed")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    return a == b


def _apply_shorthands(ds: dict[str, Any], section: Mapping[str, Any]) -> None:
    stage = section.get("zero_stage")
    if stage is not None:
        if stage not in (0, 1, 2, 3):
            raise ConfigError(f"deepspeed.zero_stage must be 0, 1, 2 or 3, got {stage!r}",
                              "deepspeed.zero_stage")
        ds.setdefault("zero_optimization", {})["stage"] = stage
    for name in ("offload_optimizer", "offload_param"):
        device = section.get(name)
        if device is None:
            continue
        if device not in OFFLOAD_DEVICES:
            raise ConfigError(f"deepspeed.{name} must be one of {format_choices(OFFLOAD_DEVICES)},"
                              f" got {device!r}", f"deepspeed.{name}")
        ds.setdefault("zero_optimization", {}).setdefault(name, {})["device"] = device


def _check_zero(ds: dict[str, Any], role: str) -> None:
    zero = ds.setdefault("zero_optimization", {})
    stage = zero.setdefault("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise ConfigError(f"engine '{role}': zero_optimization.stage must be 0-3, got {stage!r}",
                          "deepspeed")
    for name, minimum in (("offload_optimizer", 1), ("offload_param", 3)):
        device = zero.get(name, {}).get("device", "none")
        if device != "none" and stage < minimum:
            raise ConfigError(f"engine '{role}': zero_optimization.{name}.device = {device!r} "
                              f"needs ZeRO stage >= {minimum}, got stage {stage}", "deepspeed")
        if name in zero and zero[name].get("pin_memory") == AUTO:
            import torch

            zero[name]["pin_memory"] = torch.cuda.is_available()
    for key in ZERO_AUTO_DEFAULTS:
        if zero.get(key) == AUTO:
            del zero[key]


def _find_auto(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [k for key, value in node.items()
                for k in _find_auto(value, f"{path}.{key}" if path else key)]
    return [path] if node == AUTO else []


def build_ds_config(cfg: RunConfig, world_size: int, role: str = "model",
                    optimizer: OptimizerConfig | None = None) -> dict[str, Any]:
    """The DeepSpeed config dict of engine ``role`` for a data-parallel world of ``world_size``.

    ``optimizer`` replaces ``cfg.train.optimizer`` for this engine (a task may give a
    discriminator its own learning rate).
    """
    section = dict(cfg.deepspeed or {})
    opt = optimizer or cfg.train.optimizer
    ds: dict[str, Any] = read_ds_json(section["config"]) if section.get("config") else {}
    ds = merge(ds, {k: v for k, v in section.items() if k not in SHORTHANDS})
    _apply_shorthands(ds, section)
    roles = section.get("roles") or {}
    if role in roles:
        ds = merge(ds, {k: v for k, v in roles[role].items() if k not in SHORTHANDS})
        _apply_shorthands(ds, roles[role])
    _check_zero(ds, role)
    offload = ds["zero_optimization"].get("offload_optimizer", {}).get("device", "none")
    if offload != "none" and "optimizer" not in ds:
        # DeepSpeed refuses a torch optimizer with ZeRO-Offload; its own AdamW becomes
        # DeepSpeedCPUAdam there.
        ds["optimizer"] = {"type": "AdamW", "params": dict.fromkeys(
            ("lr", "betas", "eps", "weight_decay"), AUTO)}

    r = _Reconciler(ds)
    micro, accum, clip = cfg.data.batch_size, cfg.train.grad_accum, cfg.train.grad_clip
    r.fill("train_micro_batch_size_per_gpu", micro, "data.batch_size")
    r.fill("gradient_accumulation_steps", accum, "train.grad_accum")
    r.fill("train_batch_size", micro * accum * world_size,
           f"data.batch_size * train.grad_accum * world_size ({micro} * {accum} * {world_size})")
    r.fill("gradient_clipping", clip, "train.grad_clip")
    precision = cfg.train.precision
    for name in ("bf16", "fp16"):
        r.fill(f"{name}.enabled", precision == name, f"train.precision ({precision!r})")
    if "optimizer" in ds:
        r.fill("optimizer.type", "AdamW", "train.optimizer (always AdamW)",
               same=lambda a, b: str(a).lower() == str(b).lower())
        r.fill("optimizer.params.lr", opt.lr, "train.optimizer.lr")
        r.fill("optimizer.params.betas", list(opt.betas), "train.optimizer.betas")
        r.fill("optimizer.params.eps", opt.eps, "train.optimizer.eps")
        r.fill("optimizer.params.weight_decay", opt.weight_decay, "train.optimizer.weight_decay")
    if "scheduler" in ds:
        r.fill("scheduler.params.warmup_num_steps", opt.warmup_steps,
               "train.optimizer.warmup_steps", fill_missing=False)
        r.fill("scheduler.params.warmup_max_lr", opt.lr, "train.optimizer.lr", fill_missing=False)
        r.fill("scheduler.params.warmup_min_lr", 0.0, "", fill_missing=False, check=False)
        r.fill("scheduler.params.total_num_steps", cfg.train.max_steps, "train.max_steps",
               fill_missing=False)
    else:
        ds.setdefault("zero_allow_untested_optimizer", True)
    r.raise_conflicts(role)

    if ds.get("fp16", {}).get("enabled"):
        from audio_core.precision import FP16_DEFAULTS

        for key, value in FP16_DEFAULTS.items():  # dynamic loss scaling (precision.py)
            ds["fp16"].setdefault(key, value)
    if ds.get("bf16", {}).get("enabled") and ds.get("fp16", {}).get("enabled"):
        raise ConfigError(f"engine '{role}': bf16 and fp16 are both enabled", "deepspeed")
    if ds["train_batch_size"] != (ds["train_micro_batch_size_per_gpu"]
                                  * ds["gradient_accumulation_steps"] * world_size):
        raise ConfigError(f"engine '{role}': train_batch_size {ds['train_batch_size']} != "
                          f"micro-batch {ds['train_micro_batch_size_per_gpu']} * accumulation "
                          f"{ds['gradient_accumulation_steps']} * world size {world_size}",
                          "deepspeed")
    left = _find_auto(ds)
    if left:
        raise ConfigError(f"engine '{role}': audio-core cannot fill \"auto\" for "
                          f"{format_choices(left)}; give explicit values", "deepspeed")
    ds.setdefault("steps_per_print", 2**31 - 1)  # audio-core logs progress itself
    ds.setdefault("wall_clock_breakdown", False)
    return ds


def lr_lambda(opt: OptimizerConfig, max_steps: int) -> Callable[[int], float]:
    """LR multiplier of optimizer step ``s`` (0-based): linear warmup, then the schedule.

    Warmup ramps ``(s + 1) / (warmup_steps + 1)`` for ``s < warmup_steps`` (no step at LR 0,
    the peak comes once, at step ``warmup_steps``). After it, with progress
    ``p = (s - warmup_steps) / (max_steps - warmup_steps)`` clipped to [0, 1] and floor
    ``m = min_lr_ratio``: ``constant`` 1, ``linear`` ``m + (1 - m)(1 - p)``, ``cosine``
    ``m + (1 - m)(1 + cos(pi p)) / 2``.
    """
    warmup, schedule, floor = opt.warmup_steps, opt.schedule, opt.min_lr_ratio
    decay_steps = max(1, max_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        p = min(1.0, max(0.0, (step - warmup) / decay_steps))
        shape = 1.0 - p if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * p))
        return floor + (1.0 - floor) * shape

    return factor
