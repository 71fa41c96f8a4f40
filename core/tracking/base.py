"""The ``Tracker`` interface every logging backend implements, and the no-op tracker."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import Tensor

from audio_core.errors import AudioCoreError

ImageLike = str | os.PathLike | np.ndarray | Tensor


class TrackingError(AudioCoreError):
    """A tracking backend cannot be set up or used; the message names the backend."""


def to_scalar(value: Any) -> float:
    """A metric value (float, int, bool, numpy scalar, 1-element Tensor) as a Python float."""
    if isinstance(value, Tensor):
        value = value.detach().float().item()
    return float(value)


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


class Tracker:
    """Experiment tracker interface; every method is a no-op here (see :class:`NullTracker`).

    Backends override what they support. ``step`` is the global optimiser step; metric values
    are floats (0-d tensors are accepted); ``audio`` is a Tensor (channels, time) or (time,)
    in [-1, 1]; images are a file path or an array (H, W) / (H, W, 3|4), uint8 or float in
    [0, 1]. Use as a context manager: leaving the block closes it (marking failure on error).
    """

    name = "null"

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Record scalar ``metrics`` at ``step``."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record run parameters; nested mappings are flattened to dotted keys."""

    def log_audio(self, name: str, audio: Tensor, sample_rate: int, step: int) -> None:
        """Record an audio sample (channels, time) at ``step``."""

    def log_image(self, name: str, image: ImageLike, step: int) -> None:
        """Record an image (path or array) at ``step``."""

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Record a file or directory (e.g. a checkpoint) under ``artifact_path``."""

    def flush(self) -> None:
        """Push buffered data to storage."""

    def close(self, *, failed: bool = False) -> None:
        """Flush and release resources; ``failed`` marks the run as failed where supported."""

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)


class NullTracker(Tracker):
    """Writes nothing: what non-zero ranks get, so call sites never branch on rank."""
