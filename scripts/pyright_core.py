"""pyright (basic mode) over core/ as the package ``audio_core``: ``python scripts/pyright_core.py``

core/ is imported as ``audio_core`` (``package-dir`` in pyproject.toml), which pyright cannot
map, and pyright skips every path below a dot folder (``.tox/...``). So the check runs in a
temporary folder holding a link ``audio_core -> core`` and a config naming it, with this
Python's environment for third-party imports (torch, DeepSpeed, Gradio ...). The exit code
is pyright's: 0 when there is no error. The lint tox env runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
CONFIG = {"include": ["audio_core"], "typeCheckingMode": "basic", "pythonVersion": "3.11"}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="audio-core-pyright-") as tmp:
        root = Path(tmp)
        (root / "audio_core").symlink_to(CORE, target_is_directory=True)
        (root / "pyrightconfig.json").write_text(json.dumps(CONFIG), encoding="utf-8")
        return subprocess.run([sys.executable, "-m", "pyright", "--pythonpath",
                               sys.executable, "-p", str(root)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
