"""SIGTERM (a cluster's preemption notice) or SIGINT (Ctrl-C) to a real ``audio-core train``
process: it saves a checkpoint at the step it stopped at, points ``latest`` at it, exits
with status 75 ("stopped, resumable"; 0 is reserved for a finished run), and ``--resume``
completes the run. (2 ranks with the signal reaching one of them:
test_training_resume.py.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def wait_for_step(run, proc, step, timeout=120.0):
    deadline = time.monotonic() + timeout
    metrics = run / "metrics.jsonl"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"train exited early ({proc.returncode}):\n{(out + err)[-4000:]}")
        if metrics.is_file():
            steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()
                     if line.endswith("}")]
            if steps and max(steps) >= step:
                return
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no step {step} within {timeout} s")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_saves_and_resume_completes(tmp_path, helpers, signum):
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)},
                                  train={**helpers.TINY["train"], "checkpoint_every": 0})
    run = tmp_path / "tiny"
    proc = subprocess.Popen([str(helpers.BIN / "audio-core"), "train", str(config),
                             "train.max_steps=100000"],
                            env=helpers.child_env(), cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_step(run, proc, 3)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 75, (out + err)[-4000:]  # EX_TEMPFAIL: stopped, resumable
    assert "Traceback" not in err
    ckpts = run / "checkpoints"
    latest = ckpts / (ckpts / "latest").read_text().strip()
    stopped = json.loads((latest / "trainer_state.json").read_text())["step"]
    assert f"received signal {int(signum)}: checkpoint saved at step {stopped}" in err
    logged = [r["step"] for r in helpers.read_metrics(run)]
    assert stopped >= 3 and max(logged) == stopped  # it stopped at the step it had reached
    assert (ckpts / "latest").read_text().strip() == f"step_{stopped:08d}"
    assert sorted(p.name for p in ckpts.iterdir()) == ["latest", f"step_{stopped:08d}"]

    target = stopped + 3
    helpers.run_process([str(helpers.BIN / "audio-core"), "train", "--resume", str(run),
                         f"train.max_steps={target}"], tmp_path)
    assert (ckpts / "latest").read_text().strip() == f"step_{target:08d}"
    steps = [r["step"] for r in helpers.read_metrics(run) if "loss/total" in r["metrics"]]
    assert steps == list(range(1, target + 1))  # each step trained and logged exactly once
    state = json.loads((ckpts / f"step_{target:08d}" / "trainer_state.json").read_text())
    assert state["step"] == target and state["loader"]["consumed"] == target * 2
