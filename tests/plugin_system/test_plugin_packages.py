"""The plugin distributions under plugins/ (skeletons and the copyable template)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import audio_core
from audio_core.plugins import ENTRY_POINT_GROUP, PluginManager

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"
SKELETONS = ("bsq", "rae", "vae", "soundstream", "mousai")
PACKAGES = {**{name: name for name in SKELETONS}, "_template": "template"}  # folder -> name


def pyproject(folder: str) -> dict:
    return tomllib.loads((PLUGINS_DIR / folder / "pyproject.toml").read_text())


def test_every_plugin_folder_is_known():
    found = {p.name for p in PLUGINS_DIR.iterdir() if (p / "pyproject.toml").is_file()}
    assert found == set(PACKAGES)


@pytest.mark.parametrize(("folder", "name"), PACKAGES.items())
def test_package_layout_and_metadata(folder, name):
    root = PLUGINS_DIR / folder
    project = pyproject(folder)["project"]
    assert project["name"] == f"audio-plugin-{name}"
    assert project["entry-points"][ENTRY_POINT_GROUP] == {name: f"audio_plugin_{name}.hooks"}
    requires = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    assert {"audio-core", "torch"} <= set(requires)  # plus whatever the family needs
    assert requires["torch"].specifier == ""  # pinned by the environment's constraints
    assert Version(audio_core.__version__) in requires["audio-core"].specifier
    assert (root / f"audio_plugin_{name}" / "__init__.py").is_file()
    assert (root / f"audio_plugin_{name}" / "hooks.py").is_file()
    assert (root / "README.md").is_file()
    assert list((root / "tests").glob("test_*.py"))


@pytest.mark.parametrize(("folder", "name"), PACKAGES.items())
def test_hooks_load_cleanly_through_a_plugin_manager(folder, name, monkeypatch):
    import importlib.metadata as md

    module = f"audio_plugin_{name}.hooks"
    monkeypatch.syspath_prepend(str(PLUGINS_DIR / folder))
    for mod in [m for m in sys.modules if m.split(".")[0] == f"audio_plugin_{name}"]:
        monkeypatch.delitem(sys.modules, mod)
    ep = md.EntryPoint(name=name, value=module, group=ENTRY_POINT_GROUP)
    pm = PluginManager(entry_points=[ep], environ={}).load()
    info = pm.plugins[name]
    assert info.status == "loaded", info.reason
    assert all(c.startswith(f"{name}.") for c in info.components)
    assert sys.modules[module].__file__.startswith(str(PLUGINS_DIR / folder))


@pytest.mark.integration
def test_every_plugin_builds_a_wheel(tmp_path):
    """``pip wheel --no-deps --no-build-isolation`` for each plugin, in one pip call.

    Each source tree is copied first so that setuptools' build/ and *.egg-info stay out
    of the checkout.
    """
    sources = []
    for folder in PACKAGES:
        dst = tmp_path / "src" / folder
        shutil.copytree(PLUGINS_DIR / folder, dst,
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                                      ".pytest_cache"))
        sources.append(str(dst))
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--no-cache-dir", "-q", "-w", str(wheels), *sources],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in PACKAGES.values():
        (wheel,) = wheels.glob(f"audio_plugin_{name}-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            files = zf.namelist()
            info = next(f for f in files if f.endswith(".dist-info/METADATA"))
            metadata = Parser().parsestr(zf.read(info).decode())
            eps = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
        assert f"audio_plugin_{name}/hooks.py" in files
        assert not [f for f in files if f.startswith(("tests/", "conftest"))]
        assert metadata["Name"] == f"audio-plugin-{name}"
        core = [Requirement(r) for r in metadata.get_all("Requires-Dist")
                if r.startswith("audio-core")]
        assert len(core) == 1 and Version(audio_core.__version__) in core[0].specifier
        assert f"[{ENTRY_POINT_GROUP}]\n{name} = audio_plugin_{name}.hooks" in eps
