"""The component registry: typed records of every factory a plugin registered.

Names are namespaced by plugin (``core.synthetic``, ``bsq.transformer``). Factories
registered as ``"module:attribute"`` strings are imported on first use.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from audio_core.errors import (
    AudioCoreError,
    ComponentBuildError,
    ComponentConflictError,
    ConfigError,
    PluginLoadError,
    UnknownComponentError,
    did_you_mean,
    format_choices,
)
from audio_core.plugins.kinds import Kind, KindTable

Target = str | Path | Callable[..., Any]

#: One segment of a component name: ``transformer``, ``frame_encoder``, ``mel-24k``.
_NAME_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
#: A lazy target: ``"package.module:Attribute"`` (the attribute may be dotted).
_LAZY_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


@attrs.frozen
class ComponentSpec:
    """One registered component.

    ``target`` is a callable, a ``"module:attribute"`` string (imported lazily) or,
    for presets, the path of a YAML file.
    """

    kind: str
    name: str
    target: Target = attrs.field(repr=False)
    plugin: str
    distribution: str | None = None
    version: str | None = None
    description: str = ""

    @property
    def origin(self) -> str:
        """``"plugin 'bsq' (audio-plugin-bsq 0.1.0)"``, for messages."""
        if not self.distribution:
            return f"plugin '{self.plugin}'"
        version = f" {self.version}" if self.version else ""
        return f"plugin '{self.plugin}' ({self.distribution}{version})"

    def resolve(self) -> Any:
        """The factory (or preset path) this spec points at, importing it if needed."""
        if self.kind == "preset" or not isinstance(self.target, str):
            return Path(self.target) if isinstance(self.target, str) else self.target
        module_name, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in filter(None, attr.split(".")):
                obj = getattr(obj, part)
        except BaseException as exc:  # sys.exit() in a plugin module too: a plugin problem
            raise PluginLoadError(
                f"{self.kind} '{self.name}' from {self.origin} could not be imported from "
                f"'{self.target}': {type(exc).__name__}: {exc}"
            ) from exc
        return obj


def _short(params: Mapping[str, Any], limit: int = 200) -> str:
    text = repr(dict(params))
    return text if len(text) <= limit else text[:limit] + "...}"


@attrs.frozen
class BrokenPlugin:
    """A plugin that did not load, kept so that using its components raises the reason.

    ``status`` is the plugin's status: ``"broken"``, ``"blocked"`` or ``"incompatible"``.
    """

    name: str
    distribution: str | None
    reason: str
    status: str = "broken"


class Registry:
    """All components by kind and name. Built by the plugin manager."""

    def __init__(self, kinds: KindTable | None = None) -> None:
        self.kinds = kinds if kinds is not None else KindTable()
        self._specs: dict[str, dict[str, ComponentSpec]] = {k.name: {} for k in self.kinds}
        self._unavailable: dict[str, BrokenPlugin] = {}

    def copy(self) -> Registry:
        """A registry with the same kinds and components (adding to it leaves this one
        unchanged): a test's registry with extra components."""
        other = Registry(KindTable(tuple(self.kinds)))
        for spec in self.specs():
            other.add(spec)
        other._unavailable = dict(self._unavailable)
        return other

    def add_kind(self, kind: Kind) -> None:
        """Make room for components of ``kind`` (already in :attr:`kinds`)."""
        self._specs.setdefault(kind.name, {})

    def remove_kind(self, kind: Kind) -> None:
        self._specs.pop(kind.name, None)

    def _unknown_kind(self, kind: str) -> ConfigError:
        return ConfigError(f"unknown component kind '{kind}'{did_you_mean(kind, self._specs)}; "
                          f"kinds are {format_choices(self.kinds.names())}")

    def contract(self, kind: str) -> type | None:
        """The contract of ``kind`` (``None``: the kind has none)."""
        if kind not in self.kinds:
            raise self._unknown_kind(kind)
        return self.kinds[kind].resolve_contract()

    # -- writing -----------------------------------------------------------------
    def add(self, spec: ComponentSpec) -> None:
        if spec.kind not in self._specs:
            raise self._unknown_kind(spec.kind)
        existing = self._specs[spec.kind].get(spec.name)
        if existing is not None:
            raise ComponentConflictError(
                f"{spec.kind} '{spec.name}' is registered twice: by {existing.origin} "
                f"and by {spec.origin}; uninstall or block one of them "
                f"(AUDIO_CORE_BLOCK_PLUGINS=name)"
            )
        self._specs[spec.kind][spec.name] = spec

    def remove_plugin(self, plugin: str) -> None:
        """Forget every component registered by ``plugin``."""
        for by_name in self._specs.values():
            for name in [n for n, s in by_name.items() if s.plugin == plugin]:
                del by_name[name]

    def mark_unavailable(self, broken: BrokenPlugin) -> None:
        """Remember that namespace ``broken.name`` failed, so lookups can explain why."""
        self._unavailable[broken.name] = broken

    def view(self, kind: str, plugin: str, distribution: str | None = None,
             version: str | None = None) -> KindRegistry:
        return KindRegistry(self, kind, plugin, distribution, version)

    # -- reading -----------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        if kind not in self._specs:
            raise self._unknown_kind(kind)
        return sorted(self._specs[kind])

    def specs(self, kind: str | None = None) -> Iterator[ComponentSpec]:
        if kind is not None and kind not in self._specs:
            raise self._unknown_kind(kind)
        kinds = [kind] if kind else list(self._specs)
        for k in kinds:
            yield from (self._specs[k][n] for n in sorted(self._specs[k]))

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return name in self._specs.get(kind, {})

    def get(self, kind: str, name: str, *, path: str | None = None) -> ComponentSpec:
        """The spec of ``name``; the error names the config path and the valid choices."""
        if kind not in self._specs:
            raise self._unknown_kind(kind)
        spec = self._specs[kind].get(name)
        if spec is not None:
            return spec
        namespace = name.split(".", 1)[0]
        if namespace in self._unavailable:
            broken = self._unavailable[namespace]
            where = f" at {path}" if path else ""
            dist = f" ({broken.distribution})" if broken.distribution else ""
            state = "failed to load" if broken.status == "broken" else "was not loaded"
            raise PluginLoadError(
                f"{kind} '{name}'{where} comes from plugin '{namespace}'{dist}, which {state}: "
                f"{broken.reason}"
            )
        where = f" at {path}" if path else ""
        choices = self._specs[kind]
        raise UnknownComponentError(
            f"unknown {kind} '{name}'{where}{did_you_mean(name, choices)} "
            f"(available {kind}s: {format_choices(choices)})",
            path,
        )

    def build(self, kind: str, name: str, params: Mapping[str, Any] | None = None, *,
              path: str | None = None, context: Mapping[str, Any] | None = None,
              constructor: str | None = None) -> Any:
        """Build component ``name`` with ``params``.

        ``constructor`` names a method of the registered target to call instead of the
        target itself (models are classes built by ``from_config``).

        ``context`` holds values the framework supplies (sample rate, seed, ...); each is
        passed only if the factory names it as a parameter (``**kwargs`` does not count:
        ``nn.Module`` subclasses without ``__init__`` take ``**kwargs``) and ``params`` does
        not set it. Unknown
        ``params`` keys raise a :class:`ConfigError` naming ``path.params.key``. The built
        component is checked against its kind's contract
        (:mod:`audio_core.contracts.components`): a :class:`ContractError` names what it lacks.
        """
        spec = self.get(kind, name, path=path)
        factory = spec.resolve()
        if constructor is not None:
            factory = getattr(factory, constructor)
        params = dict(params or {})
        what = f"{kind} '{name}'"
        kwargs = check_params(factory, params, what, path)
        named = _named_params(factory)
        for key, value in (context or {}).items():
            if key not in params and key in named:
                kwargs[key] = value
        missing = [key for key in _required_names(factory) if key not in kwargs]
        if missing:
            at = f"{path}.params.{missing[0]}" if path else missing[0]
            raise ConfigError(
                f"missing required parameter{'s' if len(missing) > 1 else ''} "
                f"{format_choices(missing)} for {what} at {at}", at)
        try:
            built = factory(**kwargs)
        except AudioCoreError:
            raise
        except Exception as exc:  # a bad param value the factory rejects (or trips over)
            where = f" at {path}" if path else ""
            raise ComponentBuildError(
                f"could not build {what}{where} from {spec.origin} with params "
                f"{_short(params)}: {type(exc).__name__}: {exc}", path) from exc
        from audio_core.contracts.components import check_component

        check_component(built, kind, name, spec.origin, path, contract=self.contract(kind))
        return built


class KindRegistry:
    """What a hook receives: a registry bound to one kind and one plugin namespace."""

    def __init__(self, registry: Registry, kind: str, plugin: str,
                 distribution: str | None, version: str | None) -> None:
        self._registry, self.kind, self.plugin = registry, kind, plugin
        self._distribution, self._version = distribution, version

    def register(self, name: str, target: Target, *, description: str = "") -> ComponentSpec:
        """Register ``target`` as ``<plugin>.<name>``. ``name`` may already carry the prefix.

        ``target`` is a ``"module:attribute"`` string (imported on first use), a callable,
        or (presets only) the path of a YAML file.
        """
        prefix = f"{self.plugin}."
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} names are strings, got {type(name).__name__}")
        if "." in name and not name.startswith(prefix):
            raise ComponentConflictError(
                f"plugin '{self.plugin}' tried to register {self.kind} '{name}' outside its "
                f"namespace; use '{name.rsplit('.', 1)[-1]}' (it becomes '{prefix}...')"
            )
        short = name[len(prefix):] if name.startswith(prefix) else name
        if not all(_NAME_SEGMENT.fullmatch(part) for part in short.split(".")):
            raise ValueError(
                f"plugin '{self.plugin}' tried to register {self.kind} with invalid name "
                f"'{name}'; use letters, digits, '_' and '-'")
        _check_target(self.kind, prefix + short, target)
        full = prefix + short
        spec = ComponentSpec(self.kind, full, target, self.plugin, self._distribution,
                             self._version, description or _first_doc_line(target))
        self._registry.add(spec)
        return spec

    def register_folder(self, folder: str | Path, pattern: str = "*.yaml") -> list[ComponentSpec]:
        """Register every preset file in ``folder`` under its stem (presets only).

        The description is the file's first ``# `` comment line.
        """
        if self.kind != "preset":
            raise TypeError(f"register_folder registers presets, not {self.kind}s")
        return [self.register(path.stem, path, description=_first_comment_line(path))
                for path in sorted(Path(folder).glob(pattern))]


def _check_target(kind: str, name: str, target: Target) -> None:
    """Refuse targets that could only fail later, when the component is first used."""
    if kind == "preset":
        if not isinstance(target, (str, Path)):
            raise TypeError(f"preset '{name}' must be the path of a YAML file, "
                            f"got {type(target).__name__}")
    elif isinstance(target, str):
        if not _LAZY_TARGET.fullmatch(target):
            raise ValueError(f"{kind} '{name}' has target '{target}'; lazy targets are "
                             f"'package.module:Attribute' strings")
    elif not callable(target):
        raise TypeError(f"{kind} '{name}' must be a callable or a 'module:Attribute' string, "
                        f"got {type(target).__name__}")


def _first_comment_line(path: Path) -> str:
    """The first ``# `` comment of a text file, for preset descriptions."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                return line.lstrip("# ").strip()
    return ""


def _first_doc_line(target: Target) -> str:
    doc = inspect.getdoc(target) if callable(target) else None
    return doc.splitlines()[0] if doc else ""


_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _parameters(factory: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The signature's parameters, or ``None`` if it cannot be inspected."""
    try:
        return list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None


def _named_params(factory: Callable[..., Any]) -> set[str]:
    """Parameter names ``factory`` declares explicitly (``**kwargs`` does not count)."""
    return {p.name for p in _parameters(factory) or () if p.kind in _KEYWORD_KINDS}


def _accepted_names(factory: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``factory`` accepts, or ``None`` if it takes ``**kwargs`` (or is opaque)."""
    params = _parameters(factory)
    if params is None or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return _named_params(factory)


def _required_names(factory: Callable[..., Any]) -> list[str]:
    """Keyword parameters of ``factory`` without a default (empty if it cannot be inspected)."""
    return [p.name for p in _parameters(factory) or ()
            if p.default is inspect.Parameter.empty and p.kind in _KEYWORD_KINDS]


def check_params(factory: Callable[..., Any], params: Mapping[str, Any], what: str,
                 path: str | None) -> dict[str, Any]:
    """``params`` as kwargs for ``factory``; unknown keys raise naming the path and choices."""
    accepted = _accepted_names(factory)
    if accepted is not None:
        for key in params:
            if key not in accepted:
                at = f"{path}.params.{key}" if path else key
                raise ConfigError(
                    f"unknown parameter '{key}' for {what} at {at}"
                    f"{did_you_mean(key, accepted)} (valid: {format_choices(accepted)})",
                    at,
                )
    return dict(params)
