"""Preemption through real launchers, on CPU: SIGTERM to the process a job script waits on
(``audio-core launch`` around the launcher) ends with a complete checkpoint on disk *before*
that process exits, with status 75; and a run across two "nodes" (two torchrun invocations,
``--nnodes 2 --node_rank 0/1`` against 127.0.0.1) stopped by SIGTERM to one node and
resumed on both with ``--resume auto`` equals an uninterrupted run, step for step and
weight for weight.

Outputs go to files, not pipes: ranks inherit them, and reading a pipe to its end would also
wait for the ranks, hiding a launch that returns before them.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from audio_core.distributed import free_port
from audio_core.storage.checkpoint import CheckpointManager, incomplete_reason, read_state

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIMEOUT = 400


def start(argv: list, cwd: Path, log: Path, helpers) -> subprocess.Popen:
    stream = log.open("w")
    proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=helpers.child_env(),
                            stdout=stream, stderr=stream, text=True)
    proc.log = log
    return proc


def finish(proc: subprocess.Popen, timeout: float = TIMEOUT) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"no exit within {timeout} s:\n{proc.log.read_text()[-4000:]}")


def wait_for_step(run: Path, procs: list[subprocess.Popen], step: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    metrics = run / "metrics.jsonl"
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"exited early ({proc.returncode}):\n{proc.log.read_text()[-4000:]}")
        if metrics.is_file():
            steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()
                     if line.endswith("}")]
            if steps and max(steps) >= step:
                return
        time.sleep(0.05)
    pytest.fail(f"no step {step} within {TIMEOUT} s")


def stray_ranks(marker: str) -> list[psutil.Process]:
    """Live processes whose command line names ``marker`` (this test's config)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or []) \
                    and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_sigterm_to_the_deepspeed_launch_returns_after_a_complete_checkpoint(tmp_path,
                                                                            helpers):
    runner = shutil.which("deepspeed", path=str(helpers.BIN))
    assert runner, "the deepspeed launcher script is not installed next to python"
    config = helpers.write_config(tmp_path, run={"name": "ds", "output_dir": str(tmp_path)},
                                  train={**helpers.TINY["train"], "checkpoint_every": 0,
                                         "max_steps": 100000})
    run = tmp_path / "ds"
    proc = start([helpers.BIN / "audio-core", "launch", "--", runner, "--num_gpus", "2",
                  "--master_port", free_port(), "--no_local_rank", "--module", "audio_core",
                  "train", config, "deepspeed.zero_stage=2"], tmp_path, tmp_path / "log",
                 helpers)
    wait_for_step(run, [proc], 3)
    proc.send_signal(signal.SIGTERM)
    code = finish(proc)
    # the moment the process the job script waits on has exited:
    assert not stray_ranks(str(config))  # nothing is left that could still write
    ckpts = run / "checkpoints"
    latest = CheckpointManager(ckpts).latest()
    assert latest is not None and incomplete_reason(latest) is None
    assert (ckpts / "latest").read_text().strip() == latest.name
    assert not list(ckpts.glob("*.tmp"))
    stopped = read_state(latest)["step"]
    assert sorted(p.name for p in (latest / "rng").iterdir()) == ["rank_00000.pt",
                                                                  "rank_00001.pt"]
    log = proc.log.read_text()
    assert log.count(f"received signal 15: checkpoint saved at step {stopped}") == 2
    assert f"run stopped at step {stopped}" in log
    assert code == 75, log[-4000:]


def node(rank: int, port: int, config: Path, extra: list[str], cwd: Path, helpers
         ) -> subprocess.Popen:
    """One "node": ``audio-core launch -- torchrun --nnodes 2 --node_rank RANK ...``."""
    torchrun = shutil.which("torchrun", path=str(helpers.BIN)) or \
        f"{sys.executable} -m torch.distributed.run"
    return start([helpers.BIN / "audio-core", "launch", "--", *torchrun.split(),
                  "--nnodes", "2", "--node_rank", rank, "--nproc_per_node", "1",
                  "--master_addr", "127.0.0.1", "--master_port", port, "-m", "audio_core",
                  "train", config, *extra], cwd, cwd / f"{config.stem}_node{rank}.log",
                 helpers)


def two_nodes(config: Path, extra: list[str], cwd: Path, helpers) -> list[subprocess.Popen]:
    port = free_port()
    return [node(rank, port, config, extra, cwd, helpers) for rank in (0, 1)]


STEPS = 100  # long enough that the stop lands well before the end


def test_two_nodes_stopped_on_one_resume_exactly(tmp_path, helpers):
    train = {**helpers.TINY["train"], "checkpoint_every": 0, "max_steps": STEPS}
    zero2 = ["deepspeed.zero_stage=2"]
    full = helpers.write_config(tmp_path, "full.yaml", train=train,
                                run={"name": "full", "output_dir": str(tmp_path)})
    split = helpers.write_config(tmp_path, "split.yaml", train=train,
                                 run={"name": "split", "output_dir": str(tmp_path)})

    nodes = two_nodes(full, zero2, tmp_path, helpers)
    assert [finish(p) for p in nodes] == [0, 0], nodes[0].log.read_text()[-4000:]

    nodes = two_nodes(split, zero2, tmp_path, helpers)
    wait_for_step(tmp_path / "split", nodes, 3)
    nodes[1].send_signal(signal.SIGTERM)  # one node's job is preempted
    codes = [finish(p) for p in nodes]
    assert codes == [75, 75], [p.log.read_text()[-3000:] for p in nodes]  # both: resumable
    stopped = read_state(CheckpointManager(tmp_path / "split" / "checkpoints").latest())
    assert 3 <= stopped["step"] < STEPS and stopped["world_size"] == 2

    nodes = two_nodes(split, [*zero2, "--resume", "auto"], tmp_path, helpers)
    assert [finish(p) for p in nodes] == [0, 0], nodes[0].log.read_text()[-4000:]
    assert f"--resume auto: continuing {tmp_path / 'split'}" in nodes[0].log.read_text()

    expected, resumed = (helpers.losses_by_step(tmp_path / name) for name in ("full", "split"))
    assert sorted(resumed) == list(range(1, STEPS + 1))
    assert resumed == expected  # bit-identical losses at every step
    steps = [r["step"] for r in helpers.read_metrics(tmp_path / "split")
             if "loss/total" in r["metrics"]]
    assert steps == list(range(1, STEPS + 1))  # each step trained once
    last = f"checkpoints/step_{STEPS:08d}"
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = (load_file(tmp_path / run / last / name) for run in ("full", "split"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
