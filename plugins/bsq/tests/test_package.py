"""audio-plugin-bsq as a distribution: its entry point loads and registers cleanly.

These tests need only audio-core installed beside this plugin (no other plugin).
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import subprocess
import sys

from audio_core.plugins import ENTRY_POINT_GROUP, PluginManager

NAME = "bsq"
DISTRIBUTION = "audio-plugin-bsq"
HOOKS = "audio_plugin_bsq.hooks"


def entry_point() -> md.EntryPoint:
    """The installed entry point; from an uninstalled checkout, the one pyproject declares."""
    try:
        eps = md.distribution(DISTRIBUTION).entry_points
    except md.PackageNotFoundError:
        return md.EntryPoint(name=NAME, value=HOOKS, group=ENTRY_POINT_GROUP)
    (ep,) = [ep for ep in eps if ep.group == ENTRY_POINT_GROUP]
    return ep


def test_entry_point_names_the_hooks_module():
    ep = entry_point()
    assert (ep.name, ep.value) == (NAME, HOOKS)


def test_hooks_module_imports():
    module = importlib.import_module(HOOKS)
    assert module.__doc__


def test_registers_cleanly_through_a_plugin_manager():
    pm = PluginManager(entry_points=[entry_point()], environ={}).load()
    info = pm.plugins[NAME]
    assert info.status == "loaded", info.reason
    assert info.module == HOOKS
    assert all(c.startswith(f"{NAME}.") for c in info.components)
    assert pm.plugins["core"].status == "loaded"


def test_loading_the_hooks_does_not_import_torch():
    code = f"import sys, {HOOKS}; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"
