"""``audio-core train`` under plain python: the run folder holds the resolved config, and a
bad config is one clear line on stderr (exit 1, no traceback, no run folder)."""

from __future__ import annotations

import json

import pytest
import yaml

from audio_core.cli import main
from audio_core.config import load_config, to_yaml

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_train_writes_the_resolved_config(tmp_path, helpers):
    config = helpers.write_config(tmp_path, run={"name": "cli", "output_dir": "runs"})
    proc = helpers.run_process([str(helpers.BIN / "audio-core"), "train", str(config),
                                "train.max_steps=2", "train.optimizer.lr=0.01"], tmp_path)
    run = tmp_path / "runs" / "cli"  # run.output_dir is relative to the working directory
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert "extends" not in saved  # resolved: the preset it extends is merged in
    assert saved["data"]["sample_rate"] == 16000 and saved["data"]["segment_seconds"] == 0.25
    assert saved["train"]["max_steps"] == 2 and saved["train"]["optimizer"]["lr"] == 0.01
    assert saved["model"]["quantizer"]["name"] == "core.vae"
    expected = load_config(config, ["train.max_steps=2", "train.optimizer.lr=0.01",
                                    "run.output_dir=runs"])
    assert (run / "config.yaml").read_text() == to_yaml(expected)
    # the saved config reproduces the run: it loads to the same config
    assert to_yaml(load_config(run / "config.yaml")) == to_yaml(expected)
    state = json.loads((run / "checkpoints" / "step_00000002" / "trainer_state.json").read_text())
    assert state["config"] == to_yaml(expected)
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.max_stepz=3"], "unknown config key 'train.max_stepz'; did you mean "
                            "'train.max_steps'?"),
    (["model.encoder.name=core.convv"], "unknown encoder 'core.convv' at model.encoder.name; "
                                        "did you mean 'core.conv'?"),
    (["model.encoder.params.widht=3"], "unknown parameter 'widht' for encoder 'core.conv' at "
                                       "model.encoder.params.widht"),
    (["train.precision=fp8"], "invalid value 'fp8' at train.precision"),
    (["data.batch_size=0"], "invalid value 0 at data.batch_size: must be >= 1"),
    (["train.max_steps=abc"], "train.max_steps"),
    (["max_steps"], "must look like key=value"),
])
def test_bad_config_is_a_clear_error(tmp_path, helpers, capsys, overrides, message):
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path / "runs")})
    assert main(["train", str(config), *overrides]) == 1
    err = capsys.readouterr().err
    assert err.startswith("audio-core: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "missing.yaml"], "config file 'missing.yaml' does not exist"),
    (["train"], "train needs CONFIG (or --resume RUN_DIR)"),
    (["train", "--resume", "nowhere"], "--resume nowhere: not a run folder (no config.yaml)"),
])
def test_missing_config_is_a_clear_error(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("audio-core: error: ") and message in err


@pytest.mark.slow
def test_bad_config_from_the_console_script(tmp_path, helpers):
    """The installed ``audio-core`` script: exit status 1 and no traceback."""
    config = helpers.write_config(tmp_path)
    proc = helpers.run_process([str(helpers.BIN / "audio-core"), "train", str(config),
                                "train.precision=fp8"], tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "audio-core: error: invalid value 'fp8' at train.precision (valid: 'bf16', 'fp16', "
        "'fp32')"]
