"""MLflow backend: an offline local file store receives params, metrics and artifacts."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("mlflow")

from audio_core.tracking import TrackingError, build_tracker
from audio_core.tracking.mlflow_backend import MlflowTracker


@pytest.fixture(autouse=True)
def _no_user_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _client(tracker: MlflowTracker):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracker.tracking_uri)


def test_file_store_round_trip(tmp_path):
    ckpt = tmp_path / "ckpt" / "step_10"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"weights")
    tracker = MlflowTracker(tmp_path / "run", run_name="demo", tags={"family": "bsq"})
    assert tracker.tracking_uri == (tmp_path / "run" / "mlruns").resolve().as_uri()
    tracker.log_params({"model": {"dim": 64}, "optim": {"lr": 1e-3}, "long": "x" * 7000})
    for step in (1, 2):
        tracker.log_metrics({"train/loss": 1.0 / step, "bad:key": 3.0}, step)
    tracker.log_audio("val/item 0", 0.2 * torch.randn(1, 400), 8000, step=2)
    tracker.log_artifact(ckpt)
    tracker.close()

    client = _client(tracker)
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "demo"
    assert run.data.tags["family"] == "bsq"
    assert run.data.params["model.dim"] == "64" and run.data.params["optim.lr"] == "0.001"
    assert len(run.data.params["long"]) == 6000
    history = client.get_metric_history(tracker.run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 0.5)]
    assert run.data.metrics["bad_key"] == 3.0
    samples = client.list_artifacts(tracker.run_id, "samples/step_0000002/val")
    assert [a.path for a in samples] == ["samples/step_0000002/val/item 0.wav"]
    files = client.list_artifacts(tracker.run_id, "step_10")
    assert [a.path for a in files] == ["step_10/model.safetensors"]


def test_resume_continues_run_and_keeps_params(tmp_path, caplog):
    first = MlflowTracker(tmp_path)
    first.log_params({"lr": 1.0})
    first.close(failed=True)
    assert _client(first).get_run(first.run_id).info.status == "FAILED"
    second = MlflowTracker(tmp_path)
    assert second.run_id == first.run_id
    second.log_params({"lr": 2.0, "steps": 10})
    second.close()
    params = _client(second).get_run(second.run_id).data.params
    assert params == {"lr": "1.0", "steps": "10"}
    assert "kept the old values of lr" in caplog.text


def test_unusable_store_raises_naming_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    with pytest.raises(TrackingError, match="tracking backend 'mlflow'"):
        build_tracker(tmp_path, ["mlflow"])


OFFLINE_SCRIPT = """
import socket, sys
attempts = []

def deny(*args, **kwargs):
    attempts.append(args[:2])
    raise OSError("network disabled in this test")

socket.socket.connect = lambda self, address: deny(address)
socket.getaddrinfo = deny
socket.create_connection = deny
from audio_core.tracking import build_tracker

with build_tracker(sys.argv[1], ["mlflow"], rank=0, config_dict={"a": 1}) as tracker:
    tracker.log_metrics({"loss": 1.0}, 1)
import time; time.sleep(0.5)  # give a telemetry thread, if any, time to try
print("ATTEMPTS", attempts)
"""


@pytest.mark.slow
def test_never_touches_the_network(tmp_path):
    import os
    import subprocess
    import sys

    # outside pytest/CI mlflow would enable telemetry and call config.mlflow-telemetry.io
    drop = {"CI", "PYTEST_CURRENT_TEST", "GITHUB_ACTIONS", "MLFLOW_DISABLE_TELEMETRY",
            "DO_NOT_TRACK", "MLFLOW_TRACKING_URI", "MLFLOW_ALLOW_FILE_STORE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    proc = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "ATTEMPTS []"
