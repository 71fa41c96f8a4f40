"""The template plugin: its entry point loads, registers and builds through audio-core.

These tests need only audio-core installed beside this plugin (no other plugin).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys

import pytest

from audio_core.errors import ConfigError
from audio_core.plugins import ENTRY_POINT_GROUP, PluginManager

NAME = "template"
DISTRIBUTION = "audio-plugin-template"
HOOKS = "audio_plugin_template.hooks"


def entry_point() -> md.EntryPoint:
    """The installed entry point; from an uninstalled checkout, the one pyproject declares."""
    try:
        eps = md.distribution(DISTRIBUTION).entry_points
    except md.PackageNotFoundError:
        return md.EntryPoint(name=NAME, value=HOOKS, group=ENTRY_POINT_GROUP)
    (ep,) = [ep for ep in eps if ep.group == ENTRY_POINT_GROUP]
    return ep


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    return PluginManager(entry_points=[entry_point()], environ={}).load()


def test_plugin_loads(manager):
    info = manager.plugins[NAME]
    assert info.status == "loaded", info.reason
    assert info.components == (f"{NAME}.encoder",)


def test_encoder_builds_and_keeps_the_contract(manager):
    import torch

    encoder = manager.registry.build("encoder", f"{NAME}.encoder",
                                     {"dim": 8, "hop_length": 64}, path="model.encoder")
    latent = encoder(torch.randn(2, 1, 1000))
    assert latent.shape == (2, encoder.dim, -(-1000 // encoder.hop_length))  # (batch, dim, frames)
    with pytest.raises(ValueError, match="expected a waveform"):
        encoder(torch.randn(2, 1000))


def test_unknown_param_names_the_config_path(manager):
    with pytest.raises(ConfigError, match=r"model\.encoder\.params\.dimm"):
        manager.registry.build("encoder", f"{NAME}.encoder", {"dimm": 8}, path="model.encoder")


def test_listing_does_not_import_torch():
    code = ("import sys; from audio_core.plugins import PluginManager, ENTRY_POINT_GROUP\n"
            "from importlib.metadata import EntryPoint\n"
            f"ep = EntryPoint(name={NAME!r}, value={HOOKS!r}, group=ENTRY_POINT_GROUP)\n"
            "pm = PluginManager(entry_points=[ep], environ={}).load()\n"
            f"assert pm.plugins[{NAME!r}].status == 'loaded'\n"
            "print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
