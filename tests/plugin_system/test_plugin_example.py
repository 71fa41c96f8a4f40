"""The real, installed example plugin (tests/plugins/audio-plugin-example).

It is installed into the test environment like a user would install a plugin
(``pip install --no-deps tests/plugins/audio-plugin-example``; tox does it in
``commands_pre``), so these tests go through real ``importlib.metadata`` discovery.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import audio_core
from audio_core.errors import ConfigError, PluginLoadError
from audio_core.plugins import PluginManager, get_plugin_manager

DIST = "audio-plugin-example"


@pytest.fixture(scope="module", autouse=True)
def _require_example_plugin():
    try:
        md.distribution(DIST)
    except md.PackageNotFoundError:
        pytest.fail(f"{DIST} is not installed; run "
                    f"`pip install --no-deps tests/plugins/audio-plugin-example`", pytrace=False)


@pytest.fixture
def example(clean_env) -> PluginManager:
    return PluginManager().load()


def test_example_plugin_is_discovered_by_a_default_manager(example):
    info = example.plugins["example"]
    assert info.status == "loaded", info.reason
    assert (info.distribution, info.version) == (DIST, md.version(DIST))
    assert info.module == "audio_plugin_example.hooks"
    assert info.hooks == ("audio_core_register_kinds", "audio_core_register_encoders",
                          "audio_core_register_commands", "audio_core_register_augmentations")
    assert info.components == ("example.frame_encoder", "example.frames", "example.gain")
    spec = example.registry.get("encoder", "example.frame_encoder")
    assert spec.target == "audio_plugin_example.encoder:FrameEncoder"
    assert spec.origin == f"plugin 'example' ({DIST} {md.version(DIST)})"
    (core,) = [Requirement(r) for r in md.requires(DIST) if r.startswith("audio-core")]
    assert core.specifier == SpecifierSet(">=0.1,<1")


@pytest.mark.parametrize(("time", "frames"), [(1600, 10), (1601, 11), (1, 1)])
def test_example_encoder_builds_and_gives_batch_dim_frames(example, time, frames):
    import torch

    encoder = example.registry.build("encoder", "example.frame_encoder",
                                     {"dim": 8, "hop_length": 160, "channels": 2},
                                     path="model.encoder")
    assert isinstance(encoder, torch.nn.Module)
    assert (encoder.dim, encoder.hop_length) == (8, 160)
    latent = encoder(torch.randn(3, 2, time))
    assert latent.shape == (3, 8, frames)


def test_example_encoder_defaults(example):
    import torch

    encoder = example.registry.build("encoder", "example.frame_encoder")
    assert encoder(torch.randn(1, 1, 16000)).shape == (1, 16, 100)


def test_example_encoder_unknown_param_names_the_config_path(example):
    with pytest.raises(ConfigError, match=r"at model\.encoder\.params\.hop_lenght"
                                          r"; did you mean 'hop_length'"):
        example.registry.build("encoder", "example.frame_encoder", {"hop_lenght": 80},
                               path="model.encoder")


def test_process_wide_registry_has_the_example_encoder(clean_env):
    assert ("encoder", "example.frame_encoder") in audio_core.get_registry()
    assert audio_core.get_plugin_manager() is get_plugin_manager()


@pytest.mark.parametrize("blocked", ["example", DIST])
def test_blocking_the_example_plugin(clean_env, blocked):
    clean_env.setenv("AUDIO_CORE_BLOCK_PLUGINS", blocked)
    pm = PluginManager().load()
    assert pm.plugins["example"].status == "blocked"
    assert ("encoder", "example.frame_encoder") not in pm.registry
    with pytest.raises(PluginLoadError, match="blocked by AUDIO_CORE_BLOCK_PLUGINS"):
        pm.registry.build("encoder", "example.frame_encoder", {}, path="model.encoder")


def test_incompatible_core_version_refuses_the_example_plugin(clean_env):
    pm = PluginManager(core_version="1.0.0").load()
    info = pm.plugins["example"]
    assert info.status == "incompatible"
    assert "requires audio-core<1,>=0.1 but audio-core 1.0.0 is installed" in info.reason


def _run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUDIO_CORE_")}
    out = subprocess.run([sys.executable, "-c", code], env={**environ, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout


@pytest.mark.integration
def test_listing_plugins_imports_neither_torch_nor_model_code():
    code = (
        "import json, sys\n"
        "import audio_core.plugins\n"
        "before = 'torch' in sys.modules\n"
        "pm = audio_core.get_plugin_manager()\n"
        "print(json.dumps({'before': before, 'torch': 'torch' in sys.modules,\n"
        "  'encoder': 'audio_plugin_example.encoder' in sys.modules,\n"
        "  'hooks': 'audio_plugin_example.hooks' in sys.modules,\n"
        "  'status': pm.plugins['example'].status,\n"
        "  'components': [s.name for s in pm.registry.specs()]}))\n"
    )
    result = json.loads(_run(code))
    assert result["status"] == "loaded"
    assert "example.frame_encoder" in result["components"]
    assert result["hooks"] is True
    assert (result["before"], result["torch"], result["encoder"]) == (False, False, False)
