"""Fan-out tracker: forwards every call to several backends, isolating their failures."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from audio_core.tracking.base import ImageLike, Tracker

log = logging.getLogger(__name__)


class FanOutTracker(Tracker):
    """Calls each backend in order. A backend that raises is logged once as a warning and
    disabled for the rest of the run, so a broken logger never stops training. Calls after
    :meth:`close` are ignored."""

    name = "fanout"

    def __init__(self, trackers: Sequence[Tracker]):
        self.trackers = list(trackers)
        self._failed: set[int] = set()
        self._closed = False

    @property
    def active(self) -> list[str]:
        """Names of the backends still receiving calls."""
        return [t.name for i, t in enumerate(self.trackers) if i not in self._failed]

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self._closed:
            return
        for i, tracker in enumerate(self.trackers):
            if i in self._failed:
                continue
            try:
                getattr(tracker, method)(*args, **kwargs)
            except Exception as err:
                self._failed.add(i)
                log.warning("tracking backend '%s' failed in %s (%s: %s); it is disabled for "
                            "the rest of this run", tracker.name, method, type(err).__name__, err)
                try:
                    tracker.close(failed=True)
                except Exception:
                    log.debug("closing failed tracker '%s' raised too", tracker.name,
                              exc_info=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self._call("log_metrics", metrics, step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._call("log_params", params)

    def log_audio(self, name: str, audio: Tensor, sample_rate: int, step: int) -> None:
        self._call("log_audio", name, audio, sample_rate, step)

    def log_image(self, name: str, image: ImageLike, step: int) -> None:
        self._call("log_image", name, image, step)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self._call("log_artifact", path, artifact_path)

    def flush(self) -> None:
        self._call("flush")

    def close(self, *, failed: bool = False) -> None:
        self._call("close", failed=failed)
        self._closed = True
