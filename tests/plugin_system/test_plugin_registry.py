"""The component registry: lookups, errors that name the config path, params, targets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from audio_core.contracts import components as contracts
from audio_core.errors import (
    ComponentConflictError,
    ConfigError,
    PluginLoadError,
    UnknownComponentError,
)
from audio_core.plugins import ComponentSpec, KindRegistry, Registry
from audio_core.plugins.registry import BrokenPlugin


class Encoder(contracts.Encoder):
    """A stand-in encoder.

    More text.
    """

    def __init__(self, dim: int = 16, hop_length: int = 160, *, sample_rate: int = 16000):
        self.dim, self.hop_length, self.sample_rate = dim, hop_length, sample_rate

    def forward(self, waveform):
        return waveform


class NeedsRoot(contracts.Dataset):
    def __init__(self, root: str, sample_rate: int = 16000):
        self.root, self.sample_rate = root, sample_rate

    def __len__(self):
        return 0

    def __getitem__(self, index):
        raise IndexError(index)


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    view = reg.view("encoder", "example", "audio-plugin-example", "0.1.0")
    view.register("frame_encoder", Encoder)
    view.register("frame_decoder_like", Encoder)
    reg.view("dataset", "core", "audio-core", "0.1.0").register("folder", NeedsRoot)
    return reg


def test_view_is_a_kind_registry_bound_to_kind_and_namespace(registry):
    view = registry.view("decoder", "bsq", "audio-plugin-bsq", "0.1.0")
    assert isinstance(view, KindRegistry)
    assert (view.kind, view.plugin) == ("decoder", "bsq")
    spec = view.register("transformer", "audio_plugin_bsq.decoder:TransformerDecoder")
    assert isinstance(spec, ComponentSpec)
    assert (spec.kind, spec.name, spec.plugin) == ("decoder", "bsq.transformer", "bsq")
    assert ("decoder", "bsq.transformer") in registry
    assert ("encoder", "bsq.transformer") not in registry


def test_description_defaults_to_the_first_docstring_line(registry):
    assert registry.get("encoder", "example.frame_encoder").description == "A stand-in encoder."


def test_unknown_component_suggests_the_close_name_and_names_the_path(registry):
    with pytest.raises(UnknownComponentError) as err:
        registry.build("encoder", "example.frame_encodr", {}, path="model.encoder")
    message = str(err.value)
    assert message.startswith("unknown encoder 'example.frame_encodr' at model.encoder")
    assert "did you mean 'example.frame_encoder'?" in message
    assert "'example.frame_decoder_like', 'example.frame_encoder'" in message
    assert err.value.path == "model.encoder"
    assert isinstance(err.value, ConfigError) and isinstance(err.value, KeyError)


def test_unnamespaced_name_suggests_the_namespaced_one(registry):
    with pytest.raises(UnknownComponentError, match=r"did you mean 'example\.frame_encoder'"):
        registry.get("encoder", "frame_encoder", path="model.encoder.name")


def test_unknown_kind_is_a_value_error(registry):
    with pytest.raises(ConfigError, match="unknown component kind 'encoders'"):
        registry.get("encoders", "example.frame_encoder")


def test_unknown_param_names_path_params_key(registry):
    with pytest.raises(ConfigError) as err:
        registry.build("encoder", "example.frame_encoder", {"dimm": 8}, path="model.encoder")
    assert err.value.path == "model.encoder.params.dimm"
    message = str(err.value)
    assert "unknown parameter 'dimm' for encoder 'example.frame_encoder'" in message
    assert "at model.encoder.params.dimm" in message
    assert "did you mean 'dim'?" in message
    assert "'dim', 'hop_length', 'sample_rate'" in message


def test_missing_required_param_names_path_params_key(registry):
    with pytest.raises(ConfigError) as err:
        registry.build("dataset", "core.folder", {}, path="data.train")
    assert err.value.path == "data.train.params.root"
    assert "missing required parameter 'root'" in str(err.value)


def test_build_passes_params_and_accepted_context(registry):
    enc = registry.build("encoder", "example.frame_encoder", {"dim": 8},
                         context={"sample_rate": 24000, "seed": 3})
    assert (enc.dim, enc.hop_length, enc.sample_rate) == (8, 160, 24000)
    # params win over context; context can supply a required argument
    enc = registry.build("encoder", "example.frame_encoder", {"sample_rate": 8000},
                         context={"sample_rate": 24000})
    assert enc.sample_rate == 8000
    data = registry.build("dataset", "core.folder", None, context={"root": "/data"})
    assert data.root == "/data"


def test_factories_taking_kwargs_accept_any_param_but_only_named_context():
    reg = Registry()
    reg.view("task", "p", None, None).register("any", lambda **kw: kw)
    assert reg.build("task", "p.any", {"a": 1}, context={"b": 2}) == {"a": 1}
    reg.view("task", "p", None, None).register("named", lambda b=0, **kw: {"b": b, **kw})
    assert reg.build("task", "p.named", {"a": 1}, context={"b": 2}) == {"a": 1, "b": 2}


def test_lazy_target_is_imported_on_first_use_only(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "_acp_lazy_target.py").write_text(
        "class Thing:\n    def __init__(self, size=1):\n        self.size = size\n")
    reg = Registry()
    reg.view("task", "lazy", "audio-plugin-lazy", "1.0").register(
        "thing", "_acp_lazy_target:Thing")
    assert "_acp_lazy_target" not in sys.modules
    assert [s.name for s in reg.specs("task")] == ["lazy.thing"]
    try:
        assert reg.build("task", "lazy.thing", {"size": 3}).size == 3
        assert "_acp_lazy_target" in sys.modules
    finally:
        sys.modules.pop("_acp_lazy_target", None)


def test_lazy_target_that_fails_to_import_names_its_origin():
    reg = Registry()
    reg.view("encoder", "gone", "audio-plugin-gone", "1.0").register(
        "enc", "_acp_no_such_module:Encoder")
    with pytest.raises(PluginLoadError) as err:
        reg.build("encoder", "gone.enc")
    message = str(err.value)
    assert "plugin 'gone' (audio-plugin-gone 1.0)" in message
    assert "'_acp_no_such_module:Encoder'" in message and "ModuleNotFoundError" in message


def test_dotted_attribute_targets_resolve():
    reg = Registry()
    reg.view("encoder", "p", None, None).register("join", "os.path:join")
    reg.view("encoder", "p", None, None).register("nested", "os:path.join")
    import os.path

    assert reg.get("encoder", "p.join").resolve() is os.path.join
    assert reg.get("encoder", "p.nested").resolve() is os.path.join


def test_presets_resolve_to_paths(tmp_path):
    reg = Registry()
    view = reg.view("preset", "p", None, None)
    view.register("small", str(tmp_path / "small.yaml"))
    view.register("base", tmp_path / "base.yaml")
    assert reg.get("preset", "p.small").resolve() == tmp_path / "small.yaml"
    assert reg.get("preset", "p.base").resolve() == Path(tmp_path / "base.yaml")
    with pytest.raises(TypeError, match="path of a YAML file"):
        view.register("bad", Encoder)


@pytest.mark.parametrize(("name", "target", "error", "match"), [
    ("other.enc", Encoder, ComponentConflictError, "outside its namespace"),
    ("", Encoder, ValueError, "invalid name"),
    ("p.", Encoder, ValueError, "invalid name"),
    ("has space", Encoder, ValueError, "invalid name"),
    ("enc", "pkg.module.Encoder", ValueError, "'package.module:Attribute'"),
    ("enc", "pkg.module:", ValueError, "'package.module:Attribute'"),
    ("enc", Path("x.py"), TypeError, "callable or a 'module:Attribute' string"),
    ("enc", 42, TypeError, "callable or a 'module:Attribute' string"),
])
def test_invalid_registrations_are_refused(name, target, error, match):
    reg = Registry()
    with pytest.raises(error, match=match):
        reg.view("encoder", "p", None, None).register(name, target)
    assert reg.names("encoder") == []


def test_duplicate_component_names_both_distributions():
    reg = Registry()
    reg.add(ComponentSpec("encoder", "x.enc", Encoder, "x", "audio-plugin-x", "1.0"))
    with pytest.raises(ComponentConflictError) as err:
        reg.add(ComponentSpec("encoder", "x.enc", Encoder, "x", "audio-plugin-y", "2.0"))
    message = str(err.value)
    assert "encoder 'x.enc' is registered twice" in message
    assert "audio-plugin-x 1.0" in message and "audio-plugin-y 2.0" in message


def test_same_name_in_different_kinds_is_fine(registry):
    registry.view("decoder", "example", None, None).register("frame_encoder", Encoder)
    assert registry.get("decoder", "example.frame_encoder").kind == "decoder"


def test_remove_plugin_and_unavailable_namespace():
    reg = Registry()
    reg.view("encoder", "p", "audio-plugin-p", None).register("enc", Encoder)
    reg.view("encoder", "q", None, None).register("enc", Encoder)
    reg.remove_plugin("p")
    assert reg.names("encoder") == ["q.enc"]
    reg.mark_unavailable(BrokenPlugin("p", "audio-plugin-p", "import failed: boom"))
    with pytest.raises(PluginLoadError, match=r"encoder 'p\.enc' at model\.encoder comes from "
                                              r"plugin 'p' \(audio-plugin-p\), which failed to "
                                              r"load: import failed: boom"):
        reg.get("encoder", "p.enc", path="model.encoder")


def test_register_folder_registers_each_preset_with_its_comment(tmp_path):
    (tmp_path / "small.yaml").write_text("# A small model\nrun: {name: s}\n")
    (tmp_path / "big.yaml").write_text("run: {name: b}\n")
    (tmp_path / "notes.txt").write_text("# not a preset\n")
    reg = Registry()
    specs = reg.view("preset", "fam", None, None).register_folder(tmp_path)
    assert [(s.name, s.description) for s in specs] == [("fam.big", ""),
                                                        ("fam.small", "A small model")]
    with pytest.raises(TypeError, match="presets"):
        reg.view("encoder", "fam", None, None).register_folder(tmp_path)
