"""Scheduled weights: a loss or bottleneck weight as a function of the optimizer step.

In a config a weight is a number (constant) or a mapping::

    weight: {start: 0.0, end: 1.0e-4, warmup_steps: 2000, shape: linear, delay_steps: 0}

The value is ``start`` until ``delay_steps``, then moves to ``end`` over ``warmup_steps``
optimizer steps (``linear``, half-``cosine``, or ``step``: a jump to ``end`` when the warm-up
ends), and stays at ``end``. A schedule is a pure function of the step: the trainer tells
every component the step before each optimizer step (``set_step``), so after a resume at
step ``k`` every weight is what it was at step ``k``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from audio_core.errors import ConfigError, format_choices

SHAPES = ("linear", "cosine", "step")
KEYS = ("start", "end", "warmup_steps", "shape", "delay_steps")


@attrs.frozen
class Schedule:
    """A weight ``start -> end`` over ``warmup_steps`` steps after ``delay_steps``."""

    start: float
    end: float
    warmup_steps: int = 0
    shape: str = "linear"
    delay_steps: int = 0

    def __call__(self, step: int) -> float:
        progress = step - self.delay_steps
        if progress < 0:
            return self.start
        if self.warmup_steps <= 0 or progress >= self.warmup_steps:
            return self.end
        if self.shape == "step":
            return self.start
        frac = progress / self.warmup_steps
        if self.shape == "cosine":
            frac = 0.5 * (1.0 - math.cos(math.pi * frac))
        return self.start + (self.end - self.start) * frac

    @property
    def constant(self) -> bool:
        return self.start == self.end


def constant(value: float) -> Schedule:
    return Schedule(float(value), float(value))


def as_schedule(value: Any, path: str = "weight") -> Schedule:
    """A :class:`Schedule` from a number, a mapping (see the module docstring) or a
    schedule; :class:`ConfigError` naming ``path`` otherwise."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, bool):
        raise ConfigError(f"{path} must be a number or a schedule mapping, got {value!r}", path)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ConfigError(f"{path} must be finite, got {value}", path)
        return constant(value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be a number or a schedule mapping {{start, end, "
                          f"warmup_steps, shape, delay_steps}}, got {value!r}", path)
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown schedule key '{path}.{unknown[0]}' (valid: "
                          f"{format_choices(KEYS)})", f"{path}.{unknown[0]}")
    missing = [k for k in ("start", "end") if k not in value]
    if missing:
        raise ConfigError(f"schedule at {path} needs '{missing[0]}'", f"{path}.{missing[0]}")
    shape = value.get("shape", "linear")
    if shape not in SHAPES:
        raise ConfigError(f"invalid value '{shape}' at {path}.shape (valid: "
                          f"{format_choices(SHAPES)})", f"{path}.shape")
    out = {}
    for key in ("start", "end"):
        item = value[key]
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise ConfigError(f"{path}.{key} must be a finite number, got {item!r}",
                              f"{path}.{key}")
        out[key] = float(item)
    for key in ("warmup_steps", "delay_steps"):
        item = value.get(key, 0)
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise ConfigError(f"{path}.{key} must be an integer >= 0, got {item!r}",
                              f"{path}.{key}")
        out[key] = item
    return Schedule(shape=shape, **out)


class ScheduledWeights:
    """Mixin for components with scheduled weights: ``set_step`` (called by the trainer
    before each optimizer step) and ``scheduled(schedule)`` (its value at that step)."""

    _step: int = 0

    def set_step(self, step: int) -> None:
        self._step = int(step)

    def scheduled(self, schedule: Schedule) -> float:
        return schedule(self._step)
