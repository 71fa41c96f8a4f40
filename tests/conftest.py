"""Session set-up shared by the core test folders.

``TORCH_EXTENSIONS_DIR`` defaults to ``<this Python environment>/torch_extensions`` (tox
sets its own): DeepSpeed's op builds record absolute source paths, so environments sharing
``~/.cache/torch_extensions`` rebuild each other's ops over and over.

``deepspeed_ops``: DeepSpeed's JIT-built CPU ops (the comm op every process group needs,
``cpu_adam`` for offload), built once per session before any test that launches training
processes, so that no test's time limit includes a compiler run (a cold build takes
minutes on a loaded 2-core machine). tox builds them even earlier, in ``commands_pre``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))


@pytest.fixture(scope="session")
def deepspeed_ops() -> None:
    from filelock import FileLock

    from audio_core.engine.ops import prebuild_cpu_ops

    cache = Path(os.environ.get("TORCH_EXTENSIONS_DIR")
                 or Path.home() / ".cache" / "torch_extensions")
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / "audio_core_prebuild.lock")):  # one xdist worker builds
        prebuild_cpu_ops()
