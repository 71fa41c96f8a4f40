"""``build_tracker``: the fan-out of the configured backends on rank 0, a no-op elsewhere."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from audio_core import distributed
from audio_core.errors import ConfigError, did_you_mean, format_choices
from audio_core.tracking.base import NullTracker, Tracker
from audio_core.tracking.fanout import FanOutTracker


def _jsonl(run_dir: Path, opts: dict[str, Any]) -> Tracker:
    from audio_core.tracking.jsonl import JsonlTracker

    return JsonlTracker(run_dir)


def _tensorboard(run_dir: Path, opts: dict[str, Any]) -> Tracker:
    from audio_core.tracking.tensorboard_backend import TensorBoardTracker

    return TensorBoardTracker(run_dir / "tensorboard")


def _mlflow(run_dir: Path, opts: dict[str, Any]) -> Tracker:
    from audio_core.tracking.mlflow_backend import MlflowTracker

    return MlflowTracker(run_dir, tracking_uri=opts["tracking_uri"],
                         experiment_name=opts["experiment_name"], run_name=opts["run_name"],
                         tags=opts["tags"])


#: Backend name -> factory ``(run_dir, options) -> Tracker``; extend to add a backend.
BACKENDS: dict[str, Callable[[Path, dict[str, Any]], Tracker]] = {
    "jsonl": _jsonl,
    "tensorboard": _tensorboard,
    "mlflow": _mlflow,
}


def build_tracker(
    run_dir: str | os.PathLike,
    backends: Sequence[str | Tracker] = ("jsonl", "tensorboard", "mlflow"),
    *,
    rank: int | None = None,
    run_name: str | None = None,
    config_dict: Mapping[str, Any] | None = None,
    experiment_name: str = "audio-core",
    tracking_uri: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Tracker:
    """One :class:`Tracker` fanning out to ``backends`` (names from :data:`BACKENDS` or ready
    Tracker instances), writing under ``run_dir``; ``config_dict`` is logged as flattened params.

    Only rank 0 writes: other ranks (``rank`` defaults to
    :func:`audio_core.distributed.rank`) get a :class:`NullTracker`. Setup errors
    raise (:class:`TrackingError` naming the backend, :class:`ConfigError` for an unknown
    name); later write errors disable that backend only.
    ``run_name`` defaults to the run directory's name; ``tracking_uri``/``experiment_name``/
    ``tags`` are for MLflow.
    """
    if (distributed.rank() if rank is None else rank) != 0:
        return NullTracker()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    opts = {"run_name": run_name or run_dir.name, "experiment_name": experiment_name,
            "tracking_uri": tracking_uri, "tags": dict(tags or {})}
    trackers: list[Tracker] = []
    try:
        for backend in backends:
            if isinstance(backend, Tracker):
                trackers.append(backend)
                continue
            if backend not in BACKENDS:
                raise ConfigError(f"unknown tracking backend '{backend}'"
                                  f"{did_you_mean(backend, BACKENDS)}; choose from "
                                  f"{format_choices(BACKENDS)}")
            trackers.append(BACKENDS[backend](run_dir, opts))
    except BaseException:
        for tracker in trackers:
            tracker.close(failed=True)
        raise
    tracker = FanOutTracker(trackers)
    if config_dict is not None:
        tracker.log_params(config_dict)
    return tracker
