"""Shared fixtures: the plugin loaded the way audio-core loads it (installed or not)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from audio_core.testing import PluginUnderTest  # noqa: E402

PLUGIN = PluginUnderTest("vae", "audio-plugin-vae", "audio_plugin_vae.hooks")


@pytest.fixture(scope="session")
def registry():
    """A registry with audio-core's built-ins and this plugin only."""
    pm = PLUGIN.load()
    info = pm.plugins["vae"]
    assert info.status == "loaded", info.reason
    return pm.registry
