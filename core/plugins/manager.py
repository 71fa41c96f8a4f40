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
import inspect
import os
import re
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Literal

import attrs
import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from audio_core.errors import ComponentConflictError, did_you_mean
from audio_core.plugins import hookspecs
from audio_core.plugins.kinds import Kind, KindRegistrar, KindTable
from audio_core.plugins.registry import BrokenPlugin, Registry
from audio_core.version import __version__

ENTRY_POINT_GROUP = "audio_core"
ENV_BLOCK = "AUDIO_CORE_BLOCK_PLUGINS"
ENV_ALLOW = "AUDIO_CORE_PLUGINS"
CORE_DISTRIBUTION = "audio-core"

#: Internal plugins registered through the same hooks: (namespace, module).
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (("core", "audio_core.plugins.builtin"),)

Status = Literal["loaded", "broken", "blocked", "incompatible"]

#: A plugin (entry-point) name is one component-name segment: it prefixes every component.
_PLUGIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_HOOK_PREFIX = "audio_core_register_"


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
        return attrs.asdict(
            self, value_serializer=lambda _i, _a, v: list(v) if isinstance(v, tuple) else v)


@attrs.frozen
class _Candidate:
    """A discovered plugin, not yet imported. ``error``: its metadata could not be read."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    requires: tuple[str, ...]
    load: Callable[[], object]  # () -> module
    builtin: bool = False
    error: str | None = None


def _candidate(ep: md.EntryPoint) -> _Candidate:
    """The candidate for entry point ``ep``, with its distribution's name, version and
    requirements (read from metadata only; nothing is imported)."""
    dist = getattr(ep, "dist", None)
    name = version = error = None
    requires: tuple[str, ...] = ()
    if dist is not None:
        try:
            name = dist.metadata["Name"]
            version = dist.version
            requires = tuple(dist.requires or ())
        except Exception as exc:  # a corrupt METADATA file must not take the process down
            error = f"unreadable distribution metadata: {type(exc).__name__}: {exc}"
    return _Candidate(name=ep.name, module=ep.value, distribution=name, version=version,
                      requires=requires, load=ep.load, error=error)


def _kind_hookspec(kind: Kind) -> ModuleType:
    """A module holding the hookspec ``kind.hook(registry)``, for ``pm.add_hookspecs``."""

    def spec(registry):
        """Register components of a kind a plugin added."""

    spec.__name__ = spec.__qualname__ = kind.hook
    module = ModuleType(f"audio_core_kind_{kind.name}")
    setattr(module, kind.hook, hookspecs.hookspec(spec))
    return module


def _undecorated_hooks(module: ModuleType) -> list[str]:
    """Messages for ``audio_core_register_*`` functions that lack ``@hookimpl``.

    A function named after the hook of a kind that no plugin has added yet is not flagged
    here: the unknown-hook check runs after every plugin added its kinds."""
    marker = f"{hookspecs.PROJECT}_impl"
    known = {*hookspecs.KIND_HOOKS.values(), "audio_core_register_kinds"}
    return [f"function '{name}' is not decorated with @audio_core.plugins.hookimpl, "
            f"so it would be ignored{'' if name in known else did_you_mean(name, known)}"
            for name, obj in vars(module).items()
            if name.startswith(_HOOK_PREFIX) and inspect.isfunction(obj)
            and not hasattr(obj, marker)]


def _describe(exc: BaseException) -> str:
    """``"SystemExit: sys.exit(3) called"``-style text for a plugin's exception."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return f"KeyboardInterrupt raised by the plugin{f': {exc}' if str(exc) else ''}"
    return f"{type(exc).__name__}: {exc}"


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {canonicalize_name(v.strip()) for v in value.split(",") if v.strip()}


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
        self.kinds = KindTable()
        self.registry = Registry(self.kinds)
        self.plugins: dict[str, PluginInfo] = {}
        self._loaded = False

    # -- discovery -------------------------------------------------------------------
    def discover(self) -> list[_Candidate]:
        """Built-ins, then entry points of group ``audio_core``; nothing is imported.

        Two distributions claiming one plugin name raise :class:`ComponentConflictError`,
        unless all but one of them are blocked (then the blocked ones are dropped).
        """
        found = [_Candidate(name, module, CORE_DISTRIBUTION, self.core_version, (),
                            lambda m=module: importlib.import_module(m), builtin=True)
                 for name, module in self._builtins]
        eps = (md.entry_points(group=ENTRY_POINT_GROUP) if self._entry_points is None
               else [ep for ep in self._entry_points if ep.group == ENTRY_POINT_GROUP])
        by_name: dict[str, int] = {c.name: i for i, c in enumerate(found)}
        for ep in eps:
            cand = _candidate(ep)
            index = by_name.get(cand.name)
            if index is None:
                by_name[cand.name] = len(found)
                found.append(cand)
                continue
            previous = found[index]
            if (previous.distribution, previous.module) == (cand.distribution, cand.module):
                continue  # the same distribution seen twice on sys.path
            if self._blocked_reason(cand):
                continue  # the user resolved the clash by blocking this one
            if self._blocked_reason(previous):
                found[index] = cand
                continue
            raise ComponentConflictError(
                f"plugin name '{cand.name}' is claimed by two distributions: "
                f"{previous.distribution or previous.module} and "
                f"{cand.distribution or cand.module}; uninstall one, or block one with "
                f"{ENV_BLOCK}=<distribution>")
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
        """Load every plugin once. Safe to call again (no-op).

        Raises :class:`ComponentConflictError` (before importing any plugin) when two
        distributions claim the same plugin name.
        """
        if self._loaded:
            return self
        candidates = self.discover()
        imported = []
        for cand in candidates:
            info = self._import_one(cand)
            if info is None:
                imported.append(cand)
            else:
                self.plugins[cand.name] = info
        # Every plugin adds its kinds before any registers components, so components of a
        # kind another plugin adds register whatever the load order.
        imported = [cand for cand in imported if self._add_kinds(cand)]
        for cand in imported:
            self.plugins[cand.name] = self._register_components(cand)
        self.plugins = {c.name: self.plugins[c.name] for c in candidates}  # discovery order
        self._loaded = True
        return self

    def _info(self, cand: _Candidate, status: Status, reason: str | None = None,
              hooks: tuple[str, ...] = (), components: tuple[str, ...] = ()) -> PluginInfo:
        return PluginInfo(cand.name, cand.distribution, cand.version, cand.module, status,
                          reason, hooks, components, cand.builtin)

    def _fail(self, cand: _Candidate, status: Status, reason: str) -> PluginInfo:
        """Record ``cand`` as not loaded: drop its components and remember why."""
        self.registry.remove_plugin(cand.name)
        self.registry.mark_unavailable(
            BrokenPlugin(cand.name, cand.distribution, reason, status))
        return self._info(cand, status, reason)

    def _import_one(self, cand: _Candidate) -> PluginInfo | None:
        """Vet, import and register ``cand``'s hook module; ``None`` when it worked, else
        the failure's record."""
        reason = self._blocked_reason(cand)
        if reason:
            return self._fail(cand, "blocked", reason)
        if not _PLUGIN_NAME.fullmatch(cand.name):
            return self._fail(cand, "broken", f"invalid plugin name '{cand.name}': entry-point "
                              "names in group 'audio_core' become component prefixes; use "
                              "letters, digits, '_' and '-' (no dots)")
        if cand.error:
            return self._fail(cand, "broken", cand.error)
        reason = self._incompatible_reason(cand)
        if reason:
            return self._fail(cand, "incompatible", reason)
        try:
            module = cand.load()
        except BaseException as exc:  # sys.exit()/KeyboardInterrupt too: a
            # plugin must not take the process down, whatever its import raises
            return self._fail(cand, "broken", f"import failed: {_describe(exc)}")
        if not isinstance(module, ModuleType):
            return self._fail(cand, "broken", f"entry point '{cand.module}' must name a "
                              f"module of hook implementations, got {type(module).__name__}")
        undecorated = _undecorated_hooks(module)
        if undecorated:
            return self._fail(cand, "broken", "; ".join(undecorated))
        try:
            self.pm.register(module, name=cand.name)
        except Exception as exc:  # pluggy rejects hookimpls whose arguments do not match
            return self._fail(cand, "broken", f"could not register hooks: {exc}")
        return None

    def _own_impls(self, hook_name: str, plugin: str) -> list[pluggy.HookImpl]:
        caller = getattr(self.pm.hook, hook_name, None)
        return [i for i in caller.get_hookimpls() if i.plugin_name == plugin] if caller else []

    def _add_kinds(self, cand: _Candidate) -> bool:
        """Call ``cand``'s ``audio_core_register_kinds``; False (and the plugin marked
        broken) when it fails."""
        registrar = KindRegistrar(self.kinds, cand.name, cand.distribution)
        try:
            for impl in self._own_impls("audio_core_register_kinds", cand.name):
                impl.function(*[{"kinds": registrar}[a] for a in impl.argnames])
            for kind in registrar.added:
                self.pm.add_hookspecs(_kind_hookspec(kind))
                self.registry.add_kind(kind)
        except BaseException as exc:  # a clash with another plugin's kind, a bad name, exit()
            for kind in self.kinds.remove_plugin(cand.name):
                self.registry.remove_kind(kind)
            self.pm.unregister(name=cand.name)
            self.plugins[cand.name] = self._fail(
                cand, "broken", f"audio_core_register_kinds failed: {_describe(exc)}")
            return False
        return True

    def _register_components(self, cand: _Candidate) -> PluginInfo:
        """Call ``cand``'s component hooks, one per kind (core's and those plugins added)."""
        problems = self._unknown_hooks(cand.name) + self._wrapper_hooks(cand.name)
        if problems:
            self.pm.unregister(name=cand.name)
            return self._fail(cand, "broken", "; ".join(problems))
        kinds_hook = "audio_core_register_kinds"
        hooks = [kinds_hook] if self._own_impls(kinds_hook, cand.name) else []
        hook_name = ""
        try:
            for kind in self.kinds:
                hook_name = kind.hook
                for impl in self._own_impls(hook_name, cand.name):
                    hooks.append(hook_name)
                    view = self.registry.view(kind.name, cand.name, cand.distribution,
                                              cand.version)
                    # Pass only the arguments the hookimpl asks for, as pluggy does.
                    impl.function(*[{"registry": view}[a] for a in impl.argnames])
        except BaseException as exc:  # incl. duplicate names and sys.exit():
            # the plugin's own bug, not a clash, and never the end of the process
            self.pm.unregister(name=cand.name)
            return self._fail(cand, "broken", f"{hook_name} failed: {_describe(exc)}")
        components = tuple(s.name for s in self.registry.specs() if s.plugin == cand.name)
        return self._info(cand, "loaded", None, tuple(hooks), components)

    def _unknown_hooks(self, plugin_name: str) -> list[str]:
        """Messages for hook implementations of ``plugin_name`` that match no hookspec."""
        known = {*self.kinds.hooks().values(), "audio_core_register_kinds"}
        problems = []
        for name in dir(self.pm.hook):
            caller = getattr(self.pm.hook, name)
            if name.startswith("_") or not isinstance(caller, pluggy.HookCaller):
                continue
            if caller.spec is None and any(i.plugin_name == plugin_name
                                           for i in caller.get_hookimpls()):
                problems.append(f"unknown hook '{name}'{did_you_mean(name, known)}")
        return problems

    def _wrapper_hooks(self, plugin_name: str) -> list[str]:
        """Registration hooks are plain calls; hook wrappers would silently do nothing."""
        problems = []
        for hook_name in [*self.kinds.hooks().values(), "audio_core_register_kinds"]:
            for impl in self._own_impls(hook_name, plugin_name):
                if impl.hookwrapper or impl.wrapper:
                    problems.append(f"hook '{hook_name}' must not be a wrapper")
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


def get_registry() -> Registry:
    """The process-wide component :class:`Registry` (of :func:`get_plugin_manager`)."""
    return get_plugin_manager().registry


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests; after installing a plugin at runtime)."""
    global _manager
    _manager = None
