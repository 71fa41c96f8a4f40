"""Helpers for plugin authors' tests: load one plugin the way audio-core does.

    from audio_core.testing import PluginUnderTest

    plugin = PluginUnderTest("bsq", "audio-plugin-bsq", "audio_plugin_bsq.hooks")

    def test_plugin_loads():
        info = plugin.load().plugins["bsq"]
        assert info.status == "loaded", info.reason

This module imports neither torch nor pytest.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys

from audio_core.plugins import ENTRY_POINT_GROUP, PluginManager


class PluginUnderTest:
    """A plugin package, installed or run from its uninstalled checkout."""

    def __init__(self, name: str, distribution: str, hooks: str) -> None:
        self.name, self.distribution, self.hooks = name, distribution, hooks

    def entry_point(self) -> md.EntryPoint:
        """The installed entry point; from an uninstalled checkout, the declared one."""
        try:
            eps = md.distribution(self.distribution).entry_points
        except md.PackageNotFoundError:
            return md.EntryPoint(name=self.name, value=self.hooks, group=ENTRY_POINT_GROUP)
        found = [ep for ep in eps if ep.group == ENTRY_POINT_GROUP]
        if len(found) != 1:
            raise AssertionError(f"{self.distribution} declares {len(found)} entry points in "
                                 f"group '{ENTRY_POINT_GROUP}'; expected exactly one")
        return found[0]

    def load(self) -> PluginManager:
        """A manager with the built-ins and only this plugin, loaded (no env filtering)."""
        return PluginManager(entry_points=[self.entry_point()], environ={}).load()

    def modules_imported_by_hooks(self, *candidates: str) -> list[str]:
        """Which of ``candidates`` (default: torch) importing the hooks module pulls in,
        checked in a fresh interpreter."""
        candidates = candidates or ("torch",)
        code = (f"import sys, {self.hooks}; "
                f"print(','.join(m for m in {list(candidates)!r} if m in sys.modules))")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        return [m for m in out.stdout.strip().split(",") if m]

    def check_package(self) -> None:
        """The standard checks every plugin distribution should pass:

        its entry point names the hooks module, the module imports without torch, a
        plugin manager loads it with every component inside its namespace, and no preset of
        it shares its short name with a built-in (``core.``) preset (that would make the short
        name the docs use, e.g. ``tiny_autoencoder``, ambiguous once the plugin is installed).
        """
        ep = self.entry_point()
        if (ep.name, ep.value) != (self.name, self.hooks):
            raise AssertionError(f"entry point is {ep.name} = {ep.value}; expected "
                                 f"{self.name} = {self.hooks}")
        pm = self.load()
        info = pm.plugins[self.name]
        if info.status != "loaded":
            raise AssertionError(f"plugin '{self.name}' is {info.status}: {info.reason}")
        outside = [c for c in info.components if not c.startswith(f"{self.name}.")]
        if outside:
            raise AssertionError(f"components outside the '{self.name}.' namespace: {outside}")
        presets = [spec.name for spec in pm.registry.specs("preset")]
        core = {name.split(".", 1)[1] for name in presets if name.startswith("core.")}
        shadowing = sorted(name for name in presets if name.startswith(f"{self.name}.")
                           and name.split(".", 1)[1] in core)
        if shadowing:
            raise AssertionError(f"presets {shadowing} share their short names with built-in "
                                 f"core presets; rename them")
        heavy = self.modules_imported_by_hooks("torch")
        if heavy:
            raise AssertionError(f"importing {self.hooks} imports {heavy}; register "
                                 f"components as 'module:Class' strings so listing stays light")

    def check_model(self, config: str, overrides: tuple[str, ...] = (), *,
                    seconds: float = 0.3, batch: int = 2) -> list[str]:
        """Build the model of ``config`` (a preset name or YAML; ``overrides`` shrink it) the
        way ``audio_core.load`` does, and check it against every contract it claims
        (:mod:`audio_core.models.contracts`): shapes, dtypes, code ranges, determinism of
        generation, and a state-dict round trip into a fresh build. Returns the contracts
        checked (``autoencoder``, ``codec``, ``reconstruct``, ``generator``)."""
        from audio_core.testing_models import check_model_contracts

        return check_model_contracts(config, overrides, plugin=self.name, seconds=seconds,
                                     batch=batch)
