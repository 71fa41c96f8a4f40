"""Exports: an edited config is caught by its fingerprint (naming the changed keys), weights
that do not fit the model are named, a damaged weights file is a clear error, and
exporting never overwrites a run folder or a user's files."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from audio_core.engine.export import export_run
from audio_core.errors import ConfigError
from audio_core.inference.paths import OutputPathError
from audio_core.models.loading import load
from audio_core.storage.safe_load import WeightsFileError, load_safetensors
from audio_core.storage.weights_check import WeightsMismatchError, check_state_dict

pytestmark = pytest.mark.integration


def edit_config(export, **changes):
    """Set dotted keys of ``export/config.yaml``."""
    path = export / "config.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))


def test_export_records_the_config_fingerprint(exported):
    info = json.loads((exported / "export.json").read_text())
    assert len(info["config_fingerprint"]) == 16
    assert info["model_config"]["data"] == {"sample_rate": 8000, "channels": 1}
    assert info["model_config"]["model"]["encoder"]["params"]["dim"] == 8
    model = load(exported)  # unedited: loads
    assert model.config.data.sample_rate == 8000


def test_an_edited_sample_rate_is_named(exported):
    edit_config(exported, **{"data.sample_rate": 16000})  # no tensor shape changes
    with pytest.raises(WeightsMismatchError) as err:
        load(exported)
    assert "data.sample_rate: 8000 -> 16000" in str(err.value)


def test_an_edited_width_is_named(exported):
    edit_config(exported, **{"model.encoder.params.width": 6})
    with pytest.raises(WeightsMismatchError, match=r"model\.encoder\.params\.width: 4 -> 6"):
        load(exported)


def test_weights_that_do_not_fit_name_the_likely_config_keys(exported):
    """Without a fingerprint (an older export), shapes are compared and named."""
    info = json.loads((exported / "export.json").read_text())
    info.pop("config_fingerprint")
    (exported / "export.json").write_text(json.dumps(info))
    edit_config(exported, **{"model.decoder.params.width": 6})
    with pytest.raises(WeightsMismatchError) as err:
        load(exported)
    message = str(err.value)
    assert "shape differs for decoder." in message and "model.decoder.params" in message
    assert "Traceback" not in message


def test_check_state_dict_lists_missing_and_unexpected():
    module = torch.nn.Sequential(torch.nn.Linear(2, 3))
    good = module.state_dict()
    check_state_dict(module, good, "x")
    with pytest.raises(WeightsMismatchError, match=r"not in the weights \(0\.bias\)"):
        check_state_dict(module, {"0.weight": good["0.weight"]}, "x")
    with pytest.raises(WeightsMismatchError, match=r"not built by the config \(extra\)"):
        check_state_dict(module, {**good, "extra": torch.zeros(1)}, "x")


@pytest.mark.parametrize("damage", ["truncated", "empty", "pickle", "text"])
def test_a_damaged_weights_file_is_a_clear_error(exported, cli, capsys, damage, tmp_path):
    weights = exported / "model.safetensors"
    data = weights.read_bytes()
    if damage == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        weights.write_bytes(b"")
    elif damage == "pickle":
        torch.save({"w": torch.ones(2)}, weights)
    else:
        weights.write_text("not weights at all")
    with pytest.raises(WeightsFileError, match=r"model\.safetensors"):
        load_safetensors(weights)
    clip = tmp_path / "in.wav"
    import soundfile as sf

    sf.write(clip, torch.zeros(800).numpy(), 8000)
    assert cli(["reconstruct", exported, clip, tmp_path / "out.wav"]) == 1
    err = capsys.readouterr().err
    assert "is not a complete safetensors file" in err and "Traceback" not in err
    if damage == "pickle":
        assert "torch pickle" in err


def test_a_yaml_config_cannot_run_code(exported, tmp_path):
    marker = tmp_path / "yaml_ran"
    (exported / "config.yaml").write_text(
        f"!!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError):
        load(exported)
    assert not marker.exists()


def test_export_into_the_run_folder_is_refused(copy_run):
    run = copy_run()
    config = (run / "config.yaml").read_bytes()
    with pytest.raises(OutputPathError, match="is the run folder"):
        export_run(run, run)
    with pytest.raises(OutputPathError, match="is the checkpoint"):
        export_run(run, run / "checkpoints" / "step_00000004")
    with pytest.raises(OutputPathError, match="inside the run's checkpoints"):
        export_run(run, run / "checkpoints" / "exported")
    assert (run / "config.yaml").read_bytes() == config


def test_export_never_overwrites_a_users_model_files(trained_run, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my own config")
    with pytest.raises(OutputPathError, match="that an export did not write"):
        export_run(trained_run, mine)
    assert (mine / "config.yaml").read_text() == "my own config"
    again = export_run(trained_run, tmp_path / "exp")
    assert export_run(trained_run, again) == again  # re-exporting over an export is fine
