"""The audio-core wheel: every sub-package listed, package data and entry points shipped."""

import configparser
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_core_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {"audio_core" + ".".join(("", *p.parent.relative_to(ROOT / "core").parts))
             for p in (ROOT / "core").rglob("__init__.py")}
    found = {f.rstrip(".") for f in found}
    assert found == listed, f"add to pyproject [tool.setuptools] packages: {found - listed}"


@pytest.mark.integration
def test_wheel_contains_code_presets_and_entry_points(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("audio_core-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(zf.read(entry_points).decode())
    assert "audio_core/presets/demo.yaml" in names
    assert "audio_core/presets/deepspeed/zero3.json" in names
    assert "audio_core/plugins/builtin.py" in names
    assert not any(n.startswith("core/") for n in names)
    assert parser["console_scripts"]["audio-core"] == "audio_core.cli:main"
