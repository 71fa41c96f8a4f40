"""One 2-rank launch of ``task_worker.py`` per test session, shared by every test module
here (and by pytest-xdist workers, through a file lock)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock

WORKER = Path(__file__).with_name("task_worker.py")
SCENARIOS = ("gan", "gan_schedule", "gan_nan", "frozen", "diffusion", "trainer")
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT")
TIMEOUT = 400  # the JIT-built comm op is built beforehand (tests/conftest.py: deepspeed_ops)


def launch(out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(WORKER), str(out), *SCENARIOS]
    proc = subprocess.run(cmd, env=env, cwd=out, capture_output=True, text=True,
                          timeout=TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(f"task worker failed ({proc.returncode}):\n"
                    f"{(proc.stdout + proc.stderr)[-6000:]}")


@pytest.fixture(scope="session")
def task_results(tmp_path_factory, worker_id, deepspeed_ops) -> dict[str, dict]:
    """``{scenario: result}`` written by rank 0 of the 2-rank worker."""
    if worker_id == "master":
        out = tmp_path_factory.mktemp("tasks_dist")
        launch(out)
    else:
        root = tmp_path_factory.getbasetemp().parent  # common to all xdist workers
        out, done = root / "tasks_dist", root / "tasks_dist.done"
        with FileLock(str(root / "tasks_dist.lock")):
            if not done.exists():
                out.mkdir(exist_ok=True)
                launch(out)
                done.touch()
    return {name: torch.load(out / f"{name}.pt", weights_only=True) for name in SCENARIOS}
