"""Fixtures for plugin-system tests: fake distributions, entry points and hook modules.

As pytest, flake8 and conda test their plugin loaders, we build ``importlib.metadata``
distributions in memory (a :class:`FakeDistribution` serves ``METADATA`` and
``entry_points.txt``) and write hook modules to ``tmp_path``; the manager gets the
entry points injected, so the installed environment does not matter.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import itertools
import sys
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from audio_core.plugins import ENTRY_POINT_GROUP, PluginManager, reset_plugin_manager

_counter = itertools.count()


class FakeDistribution(md.Distribution):
    """An installed distribution that exists only in memory."""

    def __init__(self, name: str, version: str = "1.0.0", requires: Iterable[str] = (),
                 entry_points: dict[str, str] | None = None,
                 group: str = ENTRY_POINT_GROUP) -> None:
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        self._files = {"METADATA": "\n".join(lines) + "\n"}
        if entry_points:
            body = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
            self._files["entry_points.txt"] = f"[{group}]\n{body}\n"

    def read_text(self, filename: str) -> str | None:
        return self._files.get(filename)

    def locate_file(self, path: str | Path) -> Path:  # pragma: no cover - not used
        return Path("/nonexistent") / path


class PluginFactory:
    """Writes hook modules to a folder on ``sys.path`` and returns bound entry points."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def module(self, source: str, stem: str = "hooks") -> str:
        """Write ``source`` as a new, uniquely named module; return its name."""
        name = f"_acp_{stem}_{next(_counter)}"
        (self.root / f"{name}.py").write_text(
            "from audio_core.plugins import hookimpl\n\n" + textwrap.dedent(source))
        importlib.invalidate_caches()
        self.modules.append(name)
        return name

    def __call__(self, name: str, source: str = "", *, dist: str | None = None,
                 version: str = "1.0.0", requires: Iterable[str] = ("audio-core>=0.1",),
                 module: str | None = None) -> md.EntryPoint:
        """Entry point ``name`` of a fake distribution whose hooks module is ``source``."""
        module = module or self.module(source, name.replace("-", "_").replace(".", "_"))
        distribution = FakeDistribution(dist or f"audio-plugin-{name}", version, requires,
                                        {name: module})
        (ep,) = distribution.entry_points
        return ep

    def imported(self, module: str) -> bool:
        return module in sys.modules


@pytest.fixture
def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``make_plugin(name, source, dist=..., requires=...)`` -> an entry point."""
    monkeypatch.syspath_prepend(str(tmp_path))
    factory = PluginFactory(tmp_path)
    yield factory
    for name in factory.modules:
        sys.modules.pop(name, None)


@pytest.fixture
def manager() -> Callable[..., PluginManager]:
    """``manager(*entry_points, environ={...})`` -> a loaded manager (built-ins included)."""

    def build(*eps: md.EntryPoint, environ: dict[str, str] | None = None,
              **kwargs) -> PluginManager:
        return PluginManager(entry_points=eps, environ=environ or {}, **kwargs).load()

    return build


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The real environment without plugin block/allow variables and no cached manager."""
    monkeypatch.delenv("AUDIO_CORE_BLOCK_PLUGINS", raising=False)
    monkeypatch.delenv("AUDIO_CORE_PLUGINS", raising=False)
    reset_plugin_manager()
    yield monkeypatch
    reset_plugin_manager()

