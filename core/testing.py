"""Helpers for plugin authors' tests: load one plugin the way audio-core does.

    from audio_core.testing import PluginUnderTest

    plugin = PluginUnderTest("bsq", "audio-plugin-bsq", "audio_plugin_bsq.hooks")

    def test_plugin_loads():
        info = plugin.load().plugins["bsq"]
        assert info.status == "loaded", info.reason

This module imports neither torch nor pytest (building components does, on use).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from audio_core.plugins import ENTRY_POINT_GROUP, PluginManager

#: What :meth:`PluginUnderTest.check_components` passes to factories that name them.
CHECK_CONTEXT: dict[str, Any] = {"sample_rate": 16000, "channels": 1, "dim": 8,
                                 "cond_dim": 0, "seed": 0, "segment_seconds": 1.0}


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
        plugin manager loads it with every component inside its namespace, no preset of
        it shares its short name with a built-in (``core.``) preset (that would make the short
        name the docs use, e.g. ``tiny_autoencoder``, ambiguous once the plugin is installed),
        and every component meets its kind's contract (:meth:`check_components` with default
        params; call it with ``params`` to build the ones that need some).
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
        self.check_components()

    def check_components(self, params: Mapping[str, Mapping[str, Any]] | None = None, *,
                         context: Mapping[str, Any] | None = None) -> dict[tuple[str, str], str]:
        """Check every component this plugin registers against its kind's contract
        (:mod:`audio_core.contracts.components`; models against
        :class:`~audio_core.contracts.models.AudioModel`, on their class).

        Each component is built through the registry with ``params[name]`` (default none)
        and a small context (:data:`CHECK_CONTEXT`, updated by ``context``), as
        ``registry.build`` checks it. One that needs more params than given is checked on
        its class: its methods (attributes set in ``__init__`` show only on a built
        instance). Returns ``{(kind, name): "built" | "class" | "factory"}``
        (``"factory"``: a function that could not be built, not checked); raises
        ``AssertionError`` naming every component that breaks its contract."""
        from audio_core.contracts.components import ContractError, missing_members
        from audio_core.errors import ComponentBuildError, ConfigError

        registry = self.load().registry
        ctx = {**CHECK_CONTEXT, **(context or {})}
        checked: dict[tuple[str, str], str] = {}
        broken: list[str] = []
        for spec in registry.specs():
            contract = registry.contract(spec.kind)
            if contract is None or not spec.name.startswith(f"{self.name}."):
                continue
            if spec.kind != "model":
                try:
                    registry.build(spec.kind, spec.name, (params or {}).get(spec.name, {}),
                                   context=ctx)
                    checked[spec.kind, spec.name] = "built"
                    continue
                except ContractError as exc:
                    broken.append(str(exc))
                    continue
                except (ConfigError, ComponentBuildError):
                    pass  # needs params the test did not give: check the class
            target = spec.resolve()
            if not isinstance(target, type):
                checked[spec.kind, spec.name] = "factory"
                continue
            missing = [m for m in missing_members(target, contract) if m.endswith("()")]
            if missing:
                broken.append(f"{spec.kind} '{spec.name}' ({target.__name__}) breaks the "
                              f"{spec.kind} contract: missing {', '.join(missing)}")
            checked[spec.kind, spec.name] = "class"
        if broken:
            raise AssertionError("\n".join(broken))
        return checked

    def check_model(self, config: str, overrides: tuple[str, ...] = (), *,
                    seconds: float = 0.3, batch: int = 2) -> list[str]:
        """Build the model of ``config`` (a preset name or YAML; ``overrides`` shrink it) the
        way ``audio_core.load`` does, and check it against every contract it claims
        (:mod:`audio_core.contracts.models`): shapes, dtypes, code ranges, determinism of
        generation, and a state-dict round trip into a fresh build. Returns the contracts
        checked (``autoencoder``, ``codec``, ``reconstruct``, ``generator``)."""
        from audio_core.testing_models import check_model_contracts

        return check_model_contracts(config, overrides, plugin=self.name, seconds=seconds,
                                     batch=batch)


#: Variables a launcher sets; a nested launch must not inherit them.
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT", "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")


def run_ranks(worker: str | os.PathLike, *args: str | os.PathLike, cwd: str | os.PathLike,
              nproc: int = 2, timeout: float = 600.0,
              env: Mapping[str, str] | None = None) -> None:
    """Run the script ``worker`` with ``args`` as ``nproc`` real processes under
    ``torch.distributed.run --standalone`` (gloo on CPU), one OpenMP thread each, this
    process's ``sys.path`` as ``PYTHONPATH`` and none of its launcher variables, plus
    ``env``. DeepSpeed's comm op is built first (a compiler run stays outside ``timeout``).
    Raises ``AssertionError`` with the tail of the output when a rank fails."""
    from audio_core.engine.ops import prebuild_cpu_ops

    prebuild_cpu_ops(("ShareMemCommBuilder",))
    child = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    child.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path), **(env or {}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", str(worker), *map(str, args)]
    done = subprocess.run(cmd, env=child, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"{nproc}-rank run of {os.path.basename(worker)} failed "
                             f"({done.returncode}):\n{(done.stdout + done.stderr)[-6000:]}")
