"""Console training progress: a rich bar in a terminal, periodic plain lines otherwise (CI)."""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``"1:02:05"``; days as ``"2d 01:02:05"``; unknown -> ``"?"``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    days, rest = divmod(round(max(seconds, 0.0)), 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{days}d {hours:02d}:{rest // 60:02d}:{rest % 60:02d}" if days else text


#: How throughput units read on the console (others are shown as given).
UNIT_LABELS = {"audio_s": "s audio", "items": "items"}


class ProgressBar:
    """Shows step/total, loss, steps/s, throughput (``unit`` per second, e.g. seconds of
    audio) and ETA.

    ``update(step, loss=..., amount=...)`` takes the absolute step reached and the amount of
    ``unit`` processed since the previous update (summed over ranks if you want the global
    rate; ``audio_seconds=`` is the same for ``unit="audio_s"``). Rates are measured over the
    last ``window`` updates. When ``stream`` (default stdout) is a terminal a rich bar updates
    in place; otherwise a plain line is printed on the first update, then every
    ``log_every_s`` seconds, at the last step and on :meth:`close`.
    ``disable=True`` (non-zero ranks) prints nothing.
    """

    def __init__(self, total_steps: int, initial_step: int = 0, *, description: str = "train",
                 stream: TextIO | None = None, disable: bool = False, log_every_s: float = 30.0,
                 window: int = 50, force_terminal: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, unit: str = "audio_s"):
        self.total, self.step, self.description = int(total_steps), int(initial_step), description
        self.unit = UNIT_LABELS.get(unit, unit)
        self.disable, self.log_every_s, self._clock = disable, log_every_s, clock
        self._start = clock()
        self._audio_total = 0.0
        self._history: deque[tuple[float, int, float]] = deque([(self._start, self.step, 0.0)],
                                                               maxlen=max(2, window))
        self._values: dict[str, float] = {}
        self._last_print: float | None = None
        self._printed_step: int | None = None
        self._progress: Progress | None = None
        self._stream = stream or sys.stdout
        if disable:
            return
        console = Console(file=self._stream, force_terminal=force_terminal)
        if console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"), console=console, refresh_per_second=4)
            self._task = self._progress.add_task(description, total=self.total,
                                                 completed=self.step, stats="")
            self._progress.start()

    def rates(self) -> tuple[float | None, float | None]:
        """(steps per second, ``unit`` per second) over the recent window."""
        (t0, s0, a0), (t1, s1, a1) = self._history[0], self._history[-1]
        if t1 <= t0:
            return None, None
        return (s1 - s0) / (t1 - t0), (a1 - a0) / (t1 - t0)

    def eta(self) -> float | None:
        steps_per_s, _ = self.rates()
        if not steps_per_s:
            return None
        return max(0, self.total - self.step) / steps_per_s

    def _stats(self) -> str:
        steps_per_s, audio_per_s = self.rates()
        parts = [f"{k} {v:.4g}" for k, v in self._values.items()]
        if steps_per_s is not None:
            parts.append(f"{steps_per_s:.2f} steps/s")
        if audio_per_s:
            parts.append(f"{audio_per_s:.1f} {self.unit}/s")
        parts.append(f"elapsed {format_duration(self._clock() - self._start)}")
        parts.append(f"ETA {format_duration(self.eta())}")
        return " | ".join(parts)

    def line(self) -> str:
        """The plain status line: ``train step 120/1000 (12.0%) | loss 0.43 | ... | ETA 0:45``."""
        pct = 100.0 * self.step / self.total if self.total else 100.0
        return f"{self.description} step {self.step}/{self.total} ({pct:.1f}%) | {self._stats()}"

    def update(self, step: int, *, loss: float | None = None, amount: float = 0.0,
               audio_seconds: float = 0.0, **metrics: float) -> None:
        if self.disable:
            return
        now = self._clock()
        self.step = int(step)
        self._audio_total += float(amount) + float(audio_seconds)
        self._history.append((now, self.step, self._audio_total))
        if loss is not None:
            metrics = {"loss": loss, **metrics}
        self._values.update({k: float(v) for k, v in metrics.items()})
        if self._progress is not None:
            self._progress.update(self._task, completed=self.step, stats=self._stats())
        elif (self._last_print is None or now - self._last_print >= self.log_every_s
              or self.step >= self.total):
            self._print(now)

    def message(self, text: str) -> None:
        """Print one line (e.g. validation metrics) above the bar, or between plain lines."""
        if self.disable:
            return
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self._stream, flush=True)

    def _print(self, now: float) -> None:
        print(self.line(), file=self._stream, flush=True)
        self._last_print, self._printed_step = now, self.step

    def close(self) -> None:
        if self.disable:
            return
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self._last_print is not None and self._printed_step != self.step:
            self._print(self._clock())
        self.disable = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
