"""Exceptions raised by audio-core. All derive from :class:`AudioCoreError`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class AudioCoreError(Exception):
    """Base class for every error audio-core raises on purpose."""


class ConfigError(AudioCoreError, ValueError):
    """A config value is missing, unknown or invalid. ``path`` is its dotted config path."""

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        super().__init__(message)


class UnknownComponentError(ConfigError, KeyError):
    """A component name is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class ComponentBuildError(ConfigError):
    """A component's factory rejected its params (e.g. a negative width); the message names
    the config path and the component, the original exception is chained."""


class PluginError(AudioCoreError):
    """A plugin could not be loaded or used."""


class PluginLoadError(PluginError):
    """Using a component of a plugin that failed to load; carries the original reason."""


class ComponentConflictError(PluginError):
    """Two distributions claim the same plugin namespace or component name."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def shortened(items: Sequence[str], limit: int, sep: str = ", ") -> str:
    """The first ``limit`` of ``items`` joined by ``sep``, then ``"... (N more)"``."""
    more = f"{sep}... ({len(items) - limit} more)" if len(items) > limit else ""
    return sep.join(items[:limit]) + more


def format_choices(choices: Iterable[str], limit: int = 20) -> str:
    """Sorted, quoted, comma-joined choices, shortened past ``limit``."""
    items = sorted(choices)
    return shortened([f"'{c}'" for c in items], limit) if items else "(none)"


class MissingPackageError(AudioCoreError, ImportError):
    """An optional package (or program) a feature needs is not installed; the message says
    what to install."""


class CodecError(AudioCoreError, ValueError):
    """A model is not a discrete codec, a bitrate is out of range, or a token file does not
    belong to the model."""


def shown(value: object) -> str:
    """A value read from a file that is not audio-core's own, as an error message may show
    it: numbers, booleans and null as they are; anything else by its kind and size only (a
    string could be a secret)."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    return f"a {type(value).__name__}"


def yaml_problem(exc: BaseException) -> str:
    """``line N, column M: PROBLEM`` of a PyYAML error, one line, with no text of the
    document: no snippet, quoted parts replaced by ``'...'``; a ``!!python/`` tag is named
    as such."""
    import re

    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or "not valid YAML"
    if "python/" in problem or "!!python" in problem:
        problem = "a !!python/ tag (it would run code) is not allowed"
    problem = re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", " ".join(problem.split()))
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + problem
