"""Plain-file backend: ``metrics.jsonl``, ``params.json``, wav samples and png images."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from audio_core.audio.io import save_audio
from audio_core.tracking.base import (
    ImageLike,
    Tracker,
    TrackingError,
    finite_or_none,
    to_scalar,
)
from audio_core.tracking.media import safe_name, save_png, step_folder
from audio_core.tracking.params import flatten_params


class JsonlTracker(Tracker):
    """Writes into ``run_dir``:

    - ``metrics.jsonl``: one object per :meth:`log_metrics` call,
      ``{"step": int, "time": unix_seconds, "metrics": {name: float | null}}`` (non-finite
      values become ``null``), appended and flushed per line so an interrupted run keeps
      every line written so far; a resumed run appends to the same file;
    - ``params.json``: the flattened params, merged over earlier calls;
    - ``samples/step_XXXXXXX/NAME.wav`` and ``images/step_XXXXXXX/NAME.png``.

    Artifacts are not copied (they already live in the run directory).
    """

    name = "jsonl"

    def __init__(self, run_dir: str | os.PathLike, filename: str = "metrics.jsonl"):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / filename
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def _check_open(self) -> None:
        if self._file.closed:
            raise TrackingError(f"tracking backend 'jsonl' is closed ({self.path})")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._check_open()
        values = {str(k): finite_or_none(to_scalar(v)) for k, v in metrics.items()}
        record = {"step": int(step), "time": round(time.time(), 3), "metrics": values}
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._check_open()
        path = self.run_dir / "params.json"
        merged = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        merged.update(flatten_params(params))
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(merged, indent=1, sort_keys=True, default=str) + "\n",
                       encoding="utf-8")
        os.replace(tmp, path)

    def log_audio(self, name: str, audio: Tensor, sample_rate: int, step: int) -> None:
        self._check_open()
        path = self.run_dir / "samples" / step_folder(step) / f"{safe_name(name)}.wav"
        save_audio(path, audio.detach().float().clamp(-1.0, 1.0), sample_rate)

    def log_image(self, name: str, image: ImageLike, step: int) -> None:
        self._check_open()
        save_png(image, self.run_dir / "images" / step_folder(step) / f"{safe_name(name)}.png")

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self, *, failed: bool = False) -> None:
        self._file.close()
