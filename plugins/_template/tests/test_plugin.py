"""The template plugin: its entry point loads, registers and builds through audio-core.

These tests need only audio-core installed beside this plugin (no other plugin).
"""

import pytest

from audio_core.errors import ConfigError
from audio_core.testing import PluginUnderTest

PLUGIN = PluginUnderTest("template", "audio-plugin-template", "audio_plugin_template.hooks")


@pytest.fixture(scope="module")
def manager():
    return PLUGIN.load()


def test_plugin_loads(manager):
    info = manager.plugins[PLUGIN.name]
    assert info.status == "loaded", info.reason
    assert info.components == (f"{PLUGIN.name}.encoder",)


def test_encoder_builds_and_keeps_the_contract(manager):
    import torch

    encoder = manager.registry.build("encoder", f"{PLUGIN.name}.encoder",
                                     {"dim": 8, "hop_length": 64}, path="model.encoder")
    latent = encoder(torch.randn(2, 1, 1000))
    assert latent.shape == (2, encoder.dim, -(-1000 // encoder.hop_length))  # (batch, dim, frames)
    with pytest.raises(ValueError, match="expected a waveform"):
        encoder(torch.randn(2, 1000))


def test_unknown_param_names_the_config_path(manager):
    with pytest.raises(ConfigError, match=r"model\.encoder\.params\.dimm"):
        manager.registry.build("encoder", f"{PLUGIN.name}.encoder", {"dimm": 8},
                               path="model.encoder")


def test_package_contract():
    PLUGIN.check_package()
