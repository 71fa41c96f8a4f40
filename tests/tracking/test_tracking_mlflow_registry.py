"""MLflow model registry: exports registered as model versions with the run's metrics,
offline in the run's file store (``train.register_model`` / ``export --register``)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mlflow")

from audio_core.tracking import TrackingError
from audio_core.tracking.mlflow_backend import MlflowTracker, register_export


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory


def fake_export(folder, step=40):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.yaml").write_text("run: {name: x}\n")
    (folder / "export.json").write_text(json.dumps(
        {"step": step, "model_type": "vae.vae", "weights": "ema"}))
    return folder


def test_an_export_becomes_a_model_version_with_the_run_metrics(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "run"
    tracker = MlflowTracker(run_dir)
    tracker.log_metrics({"val/mel_distance": 2.0, "loss/total": 5.0, "throughput/x": 1.0}, 10)
    tracker.log_metrics({"val/mel_distance": 1.5}, 20)
    tracker.close()
    first = register_export(run_dir, fake_export(tmp_path / "export"), "my-vae")
    second = register_export(run_dir, fake_export(tmp_path / "export2", step=80), "my-vae")
    assert (first["version"], second["version"]) == (1, 2)
    assert first["run_id"] == tracker.run_id
    assert first["metrics"] == {"loss/total": 5.0, "val/mel_distance": 1.5}
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()

    # reading the registry back (mlflow itself would otherwise open ./mlflow.db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", first["tracking_uri"])
    client = MlflowClient(tracking_uri=first["tracking_uri"],
                          registry_uri=first["tracking_uri"])
    version = client.get_model_version("my-vae", "1")
    assert version.run_id == tracker.run_id and version.source == first["source"]
    assert version.tags["metric.val/mel_distance"] == "1.5"
    assert version.tags["step"] == "40" and version.tags["model_type"] == "vae.vae"
    assert "throughput/x" not in " ".join(version.tags)
    files = client.list_artifacts(tracker.run_id, "export/step_0000040")
    assert sorted(f.path.rsplit("/", 1)[-1] for f in files) == \
        ["config.yaml", "export.json", "model.safetensors"]
    assert (run_dir / "mlruns" / "models" / "my-vae").is_dir()


def test_a_run_without_mlflow_tracking_gets_a_run_of_its_own(tmp_path):
    result = register_export(tmp_path / "plain_run", fake_export(tmp_path / "e"), "m")
    assert result["version"] == 1 and result["metrics"] == {}
    assert result["tracking_uri"] == (tmp_path / "plain_run" / "mlruns").resolve().as_uri()


def test_not_an_export_is_an_error(tmp_path):
    with pytest.raises(TrackingError, match="not an export folder"):
        register_export(tmp_path, tmp_path, "m")


def test_export_command_registers_when_the_config_asks(tmp_path, capsys):
    from audio_core.cli import main

    out = tmp_path / "runs"
    assert main(["train", "tiny_autoencoder", "train.max_steps=2", "train.val_every=0",
                 "train.checkpoint_every=0", "train.trackers=[jsonl,mlflow]",
                 "train.register_model=tiny-ae", f"run.output_dir={out}",
                 "data.train.params.num_items=16", "data.batch_size=2"]) == 0
    run_dir = out / "tiny_autoencoder"
    assert main(["export", str(run_dir), str(tmp_path / "export")]) == 0
    assert "MLflow model 'tiny-ae' version 1" in capsys.readouterr().out
    assert main(["export", str(run_dir), str(tmp_path / "export2"), "--register",
                 "other"]) == 0
    assert "MLflow model 'other' version 1" in capsys.readouterr().out
    assert (run_dir / "mlruns" / "models" / "tiny-ae").is_dir()
