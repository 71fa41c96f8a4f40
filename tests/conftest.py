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


#: What an in-process run sets for its world of one (audio_core.distributed).
_RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE",
               "LOCAL_WORLD_SIZE")


@pytest.fixture(autouse=True)
def _no_process_group_left_behind(request):
    """After each test: no process group and no rendezvous variables of an in-process run
    remain, so a later test in this worker (or a process it launches) starts clean. A test
    that left a process group behind gets a warning naming it."""
    saved = {key: os.environ.get(key) for key in _RENDEZVOUS}
    yield
    if "torch" in sys.modules:
        from audio_core import distributed

        if distributed.is_initialized():
            import warnings

            warnings.warn(f"{request.node.nodeid} left a process group initialised; torn down",
                          stacklevel=1)
            distributed.teardown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
