"""Plugin discovery and loading.

Discovery (entry points in group ``audio_core``) is separate from loading. Before a
plugin is imported it is checked against the block/allow environment variables and
against the audio-core version range its distribution declares in ``Requires-Dist``.
A plugin that fails at any step is recorded with its reason and skipped; the rest of
the process keeps working.

Environment variables:

``AUDIO_CORE_BLOCK_PLUGINS``
    comma-separated plugin (entry-point) or distribution names never to load.
``AUDIO_CORE_PLUGINS``
    if set, only these plugins load (built-ins always do); set it empty for none.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Literal

import attrs
import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from audio_core import __version__
from audio_core.errors import ComponentConflictError, did_you_mean
from audio_core.plugins import hookspecs
from audio_core.plugins.registry import BrokenPlugin, Registry

ENTRY_POINT_GROUP = "audio_core"
ENV_BLOCK = "AUDIO_CORE_BLOCK_PLUGINS"
ENV_ALLOW = "AUDIO_CORE_PLUGINS"
CORE_DISTRIBUTION = "audio-core"

#: Internal plugins registered through the same hooks: (namespace, module).
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (("core", "audio_core.plugins.builtin"),)

Status = Literal["loaded", "broken", "blocked", "incompatible"]


@attrs.frozen
class PluginInfo:
    """What ``audio-core plugins`` shows for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    status: Status
    reason: str | None = None
    hooks: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    builtin: bool = False

    def to_dict(self) -> dict[str, object]:
        return attrs.asdict(self, value_serializer=lambda _i, _a, v: list(v) if isinstance(v, tuple) else v)


@attrs.frozen
class _Candidate:
    """A discovered plugin, not yet imported."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    requires: tuple[str, ...]
    load: object  # () -> module
    builtin: bool = False


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {canonicalize_name(v) for v in value.split(",") if v.strip()}


class PluginManager:
    """Discovers, vets and loads plugins, then asks each to fill the :class:`Registry`.

    ``entry_points`` and ``environ`` default to the real ones; tests pass their own.
    """

    def __init__(self, entry_points: Iterable[md.EntryPoint] | None = None, *,
                 environ: Mapping[str, str] | None = None,
                 builtins: Iterable[tuple[str, str]] = BUILTIN_PLUGINS,
                 core_version: str = __version__) -> None:
        self._entry_points = entry_points
        self._environ = os.environ if environ is None else environ
        self._builtins = tuple(builtins)
        self.core_version = core_version
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}
        self._loaded = False

    # -- discovery -------------------------------------------------------------------
    def discover(self) -> list[_Candidate]:
        """Built-ins, then entry points of group ``audio_core``; nothing is imported."""
        found = [_Candidate(name, module, CORE_DISTRIBUTION, self.core_version, (),
                            lambda m=module: importlib.import_module(m), builtin=True)
                 for name, module in self._builtins]
        eps = (md.entry_points(group=ENTRY_POINT_GROUP) if self._entry_points is None
               else [ep for ep in self._entry_points if ep.group == ENTRY_POINT_GROUP])
        by_name: dict[str, _Candidate] = {c.name: c for c in found}
        for ep in eps:
            dist = getattr(ep, "dist", None)
            cand = _Candidate(
                name=ep.name, module=ep.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
                requires=tuple(dist.requires or ()) if dist is not None else (),
                load=ep.load)
            previous = by_name.get(cand.name)
            if previous is not None:
                if (previous.distribution, previous.module) == (cand.distribution, cand.module):
                    continue  # the same distribution seen twice on sys.path
                raise ComponentConflictError(
                    f"plugin name '{cand.name}' is claimed by two distributions: "
                    f"{previous.distribution or previous.module} and "
                    f"{cand.distribution or cand.module}; uninstall one, or block one with "
                    f"{ENV_BLOCK}=<distribution>")
            by_name[cand.name] = cand
            found.append(cand)
        return found

    # -- vetting ---------------------------------------------------------------------
    def _blocked_reason(self, cand: _Candidate) -> str | None:
        if cand.builtin:
            return None
        keys = {canonicalize_name(cand.name)}
        if cand.distribution:
            keys.add(canonicalize_name(cand.distribution))
        blocked = _names(self._environ.get(ENV_BLOCK))
        if blocked and keys & blocked:
            return f"blocked by {ENV_BLOCK}"
        allowed = _names(self._environ.get(ENV_ALLOW))
        if allowed is not None and not keys & allowed:
            return f"not listed in {ENV_ALLOW}"
        return None

    def _incompatible_reason(self, cand: _Candidate) -> str | None:
        for line in cand.requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if canonicalize_name(req.name) != CORE_DISTRIBUTION:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            if req.specifier and not req.specifier.contains(Version(self.core_version),
                                                            prereleases=True):
                return (f"requires audio-core{req.specifier} but audio-core "
                        f"{self.core_version} is installed; upgrade one of them")
        return None

    # -- loading ---------------------------------------------------------------------
    def load(self) -> PluginManager:
        """Load every plugin once. Safe to call again (no-op)."""
        if self._loaded:
            return self
        self._loaded = True
        for cand in self.discover():
            self.plugins[cand.name] = self._load_one(cand)
        return self

    def _info(self, cand: _Candidate, status: Status, reason: str | None = None,
              hooks: tuple[str, ...] = (), components: tuple[str, ...] = ()) -> PluginInfo:
        return PluginInfo(cand.name, cand.distribution, cand.version, cand.module, status,
                          reason, hooks, components, cand.builtin)

    def _fail(self, cand: _Candidate, status: Status, reason: str) -> PluginInfo:
        self.registry.remove_plugin(cand.name)
        self.registry.mark_unavailable(BrokenPlugin(cand.name, cand.distribution, reason))
        return self._info(cand, status, reason)

    def _load_one(self, cand: _Candidate) -> PluginInfo:
        reason = self._blocked_reason(cand)
        if reason:
            self.registry.mark_unavailable(BrokenPlugin(cand.name, cand.distribution, reason))
            return self._info(cand, "blocked", reason)
        reason = self._incompatible_reason(cand)
        if reason:
            return self._fail(cand, "incompatible", reason)
        try:
            module = cand.load()
        except Exception as exc:  # a broken plugin must not take the process down
            return self._fail(cand, "broken", f"import failed: {type(exc).__name__}: {exc}")
        if not isinstance(module, ModuleType):
            return self._fail(cand, "broken", f"entry point '{cand.module}' must name a "
                              f"module of hook implementations, got {type(module).__name__}")
        try:
            self.pm.register(module, name=cand.name)
        except Exception as exc:  # pluggy rejects hookimpls whose arguments do not match
            return self._fail(cand, "broken", f"invalid hook implementation: {exc}")
        unknown = self._unknown_hooks(cand.name)
        if unknown:
            self.pm.unregister(name=cand.name)
            return self._fail(cand, "broken", "; ".join(unknown))
        hooks: list[str] = []
        try:
            for kind, hook_name in hookspecs.KIND_HOOKS.items():
                for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                    if impl.plugin_name == cand.name:
                        hooks.append(hook_name)
                        view = self.registry.view(kind, cand.name, cand.distribution,
                                                  cand.version)
                        impl.function(registry=view)
        except ComponentConflictError:
            raise
        except Exception as exc:
            self.pm.unregister(name=cand.name)
            return self._fail(cand, "broken", f"{hook_name} failed: {type(exc).__name__}: {exc}")
        components = tuple(s.name for s in self.registry.specs() if s.plugin == cand.name)
        return self._info(cand, "loaded", None, tuple(hooks), components)

    def _unknown_hooks(self, plugin_name: str) -> list[str]:
        """Messages for hook implementations of ``plugin_name`` that match no hookspec."""
        known = set(hookspecs.KIND_HOOKS.values())
        problems = []
        for name in dir(self.pm.hook):
            caller = getattr(self.pm.hook, name)
            if name.startswith("_") or not isinstance(caller, pluggy.HookCaller):
                continue
            if caller.spec is None and any(i.plugin_name == plugin_name
                                           for i in caller.get_hookimpls()):
                problems.append(f"unknown hook '{name}'{did_you_mean(name, known)}")
        return problems

    # -- queries ---------------------------------------------------------------------
    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "broken"]


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide manager, loaded on first call."""
    global _manager
    if _manager is None:
        _manager = PluginManager().load()
    return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests; after installing a plugin at runtime)."""
    global _manager
    _manager = None
