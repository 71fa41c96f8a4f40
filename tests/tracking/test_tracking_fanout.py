"""build_tracker and the fan-out: rank gating, failure isolation, unknown backends."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from audio_core.errors import ConfigError
from audio_core.tracking import (
    FanOutTracker,
    NullTracker,
    Tracker,
    TrackingError,
    build_tracker,
)


class Recorder(Tracker):
    name = "recorder"

    def __init__(self, fail_on: str | None = None):
        self.calls: list[str] = []
        self.fail_on = fail_on

    def _record(self, what: str) -> None:
        if what == self.fail_on:
            raise OSError("disk full")
        self.calls.append(what)

    def log_metrics(self, metrics, step):
        self._record("log_metrics")

    def log_audio(self, name, audio, sample_rate, step):
        self._record("log_audio")

    def close(self, *, failed=False):
        self.calls.append(f"close(failed={failed})")


def test_non_zero_rank_writes_nothing(tmp_path, monkeypatch):
    tracker = build_tracker(tmp_path / "run", ("jsonl", "tensorboard", "mlflow"), rank=1,
                            config_dict={"a": 1})
    assert isinstance(tracker, NullTracker)
    with tracker:
        tracker.log_metrics({"loss": 1.0}, 1)
        tracker.log_audio("x", torch.zeros(1, 10), 8000, 1)
    assert not (tmp_path / "run").exists()
    monkeypatch.setenv("RANK", "3")
    assert isinstance(build_tracker(tmp_path / "run", ("jsonl",)), NullTracker)


def test_rank_zero_jsonl_with_config(tmp_path):
    with build_tracker(tmp_path, ("jsonl",), rank=0, config_dict={"model": {"dim": 4}}) as t:
        t.log_metrics({"loss": 2.0}, 5)
    assert json.loads((tmp_path / "params.json").read_text()) == {"model.dim": 4}
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert row["step"] == 5 and row["metrics"] == {"loss": 2.0}
    t.log_metrics({"loss": 1.0}, 6)  # after close: ignored, no error


def test_failing_backend_warns_once_and_is_disabled(caplog):
    good, bad = Recorder(), Recorder(fail_on="log_metrics")
    tracker = FanOutTracker([bad, good])
    with caplog.at_level(logging.WARNING, logger="audio_core.tracking"):
        for step in range(3):
            tracker.log_metrics({"loss": 1.0}, step)
        tracker.log_audio("a", torch.zeros(1, 4), 8000, 3)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'recorder' failed in log_metrics (OSError: disk full)" in warnings[0].getMessage()
    assert tracker.active == ["recorder"]
    assert good.calls == ["log_metrics"] * 3 + ["log_audio"]
    assert bad.calls == ["close(failed=True)"]
    tracker.close()
    assert good.calls[-1] == "close(failed=False)" and bad.calls == ["close(failed=True)"]


def test_unknown_backend_and_setup_failure(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'mlflow'"):
        build_tracker(tmp_path, ("jsonl", "mlfow"), rank=0)
    good = Recorder()

    class Broken(Tracker):
        name = "broken"

        def __init__(self):
            raise TrackingError("tracking backend 'broken' cannot start")

    from audio_core.tracking import factory

    factory.BACKENDS["broken"] = lambda run_dir, opts: Broken()
    try:
        with pytest.raises(TrackingError, match="'broken'"):
            build_tracker(tmp_path, (good, "broken"), rank=0)
    finally:
        del factory.BACKENDS["broken"]
    assert good.calls == ["close(failed=True)"]  # already-built backends are closed
