"""Config loading: presets, overrides, interpolation, inheritance and clear errors."""

from pathlib import Path

import pytest
import yaml

from audio_core.config import load_config, save_config, to_yaml
from audio_core.config.schema import RunConfig
from audio_core.errors import ConfigError, UnknownComponentError
from audio_core.plugins.registry import ComponentSpec, Registry


class TinyEncoder:
    """A factory with known params, standing in for a real encoder."""

    def __init__(self, dim: int = 8, hop_length: int = 160):
        self.dim, self.hop_length = dim, hop_length


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.add(ComponentSpec("dataset", "core.synthetic", TinyEncoder, "core"))
    reg.add(ComponentSpec("encoder", "bsq.transformer", TinyEncoder, "bsq", "audio-plugin-bsq"))
    return reg


def write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_preset_loads_with_overrides_and_interpolation():
    cfg = load_config("demo", ["train.max_steps=7", "run.name=r${train.max_steps}"])
    assert isinstance(cfg, RunConfig)
    assert cfg.train.max_steps == 7
    assert cfg.run.name == "r7"
    assert cfg.data.train.name == "core.synthetic"
    assert isinstance(cfg.data.sample_rate, int)


def test_types_are_converted_and_defaults_filled(tmp_path, registry):
    path = write(tmp_path, "c.yaml", {"data": {"sample_rate": "22050"}})
    cfg = load_config(path, registry=registry)
    assert cfg.data.sample_rate == 22050
    assert cfg.train.optimizer.betas == [0.9, 0.99]


@pytest.mark.parametrize(("override", "message"), [
    ("train.max_step=5", "unknown config key 'train.max_step'; did you mean 'train.max_steps'?"),
    ("dat.batch_size=2", "unknown config key 'dat'; did you mean 'data'?"),
    ("data.sample_rate=abc", "data.sample_rate"),
    ("train.precision=fp8", "invalid value 'fp8' at train.precision"),
    ("data.batch_size=0", "invalid value 0 at data.batch_size: must be >= 1"),
    ("run.name=${nope}", "at run.name"),
])
def test_bad_values_name_their_path(override, message):
    with pytest.raises(ConfigError, match=None) as info:
        load_config("demo", [override], check_components=False)
    assert message in str(info.value)


def test_unknown_key_inside_a_list_names_the_index(registry):
    with pytest.raises(ConfigError) as info:
        load_config({"model": {"losses": [{"name": "x"}, {"nme": "y"}]}},
                    registry=registry, check_components=False)
    assert "'model.losses[1].nme'" in str(info.value)
    assert "did you mean 'model.losses[1].name'" in str(info.value)
    assert info.value.path == "model.losses[1].nme"


def test_unknown_component_suggests_the_close_name(registry):
    with pytest.raises(UnknownComponentError) as info:
        load_config({"model": {"encoder": {"name": "bsq.transfomer"}}}, registry=registry)
    assert str(info.value).startswith(
        "unknown encoder 'bsq.transfomer' at model.encoder.name; did you mean 'bsq.transformer'?")


def test_unknown_component_param_is_an_error(registry):
    cfg = {"model": {"encoder": {"name": "bsq.transformer", "params": {"dimm": 4}}}}
    load_config(cfg, registry=registry)  # names only: params are not checked
    with pytest.raises(ConfigError) as info:
        load_config(cfg, registry=registry, check_params=True)
    assert "unknown parameter 'dimm'" in str(info.value)
    assert "model.encoder.params.dimm" in str(info.value)
    assert "did you mean 'dim'" in str(info.value)


def test_missing_component_name(registry):
    with pytest.raises(ConfigError, match=r"missing mandatory value: name \(at model\.encoder"):
        load_config({"model": {"encoder": {"params": {}}}}, registry=registry)


def test_extends_merges_over_base_and_detects_cycles(tmp_path, registry):
    write(tmp_path, "base.yaml", {"data": {"sample_rate": 24000, "batch_size": 4}})
    child = write(tmp_path, "child.yaml", {"extends": "base.yaml", "data": {"batch_size": 2}})
    cfg = load_config(child, registry=registry)
    assert (cfg.data.sample_rate, cfg.data.batch_size) == (24000, 2)

    write(tmp_path, "a.yaml", {"extends": "b.yaml"})
    write(tmp_path, "b.yaml", {"extends": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml", registry=registry)


def test_extends_a_preset_by_name(tmp_path):
    child = write(tmp_path, "child.yaml", {"extends": "demo", "train": {"max_steps": 3}})
    cfg = load_config(child)
    assert cfg.run.name == "demo" and cfg.train.max_steps == 3


def test_file_errors_name_the_file(tmp_path, registry):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml' is not valid YAML"):
        load_config(bad, registry=registry)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", registry=registry)
    with pytest.raises(ConfigError, match="did you mean 'demo'"):
        load_config("demmo")
    with pytest.raises(ConfigError, match="key=value"):
        load_config("demo", ["max_steps"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config("demo", ["train.max_steps=11", "data.val=null"])
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    again = load_config(path)
    assert again == cfg
    assert to_yaml(again) == path.read_text()
