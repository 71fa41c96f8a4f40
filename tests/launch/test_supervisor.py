"""``audio-core launch`` with stand-in launcher and rank processes (no torch, fast): a stop
signal reaches the ranks past the launcher, the command the user waits on exits only after
every rank has saved and exited, and its exit status says finished / stopped / failed.
(The real DeepSpeed launcher and torchrun: tests/training/test_training_preemption.py and
test_training_multinode.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from audio_core.launch.status import STATUS_DIR_ENV, WorkerStatus, read_workers
from audio_core.launch.supervisor import Supervisor, exit_status

HERE = Path(__file__).parent
LAUNCHER, WORKER = HERE / "fake_launcher.py", HERE / "fake_worker.py"
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", STATUS_DIR_ENV)


def launch(out: Path, *command: str, grace: float | None = None) -> subprocess.Popen:
    """``audio-core launch [--grace G] -- COMMAND`` in a process of its own."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    options = ["--grace", str(grace)] if grace is not None else []
    # output to a file, not a pipe: ranks inherit it, and reading a pipe to its end would
    # wait for them too, hiding a launch that returns early
    log = (out / "launch.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "audio_core", "launch", *options, "--",
                             *command], cwd=out, env=env, text=True, stdout=log, stderr=log)
    proc.log = out / "launch.log"
    return proc


def fake_run(out: Path, nproc: int, steps: int, save_s: float, *extra: str) -> list[str]:
    return [sys.executable, str(LAUNCHER), str(out), str(nproc), str(steps), str(save_s),
            *extra]


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"exited ({proc.returncode}) before {what}:\n{proc.log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


def steps_reached(out: Path, nproc: int, step: int):
    def reached() -> bool:
        files = [out / f"rank{r}.step" for r in range(nproc)]
        return all(f.is_file() and f.read_text() and int(f.read_text()) >= step for f in files)
    return reached


def finish(proc: subprocess.Popen, timeout: float = 60.0) -> tuple[int, str]:
    """Exit status (waiting for the process only, as a job script does) and its output."""
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, proc.log.read_text()


def test_sigterm_reaches_the_ranks_and_the_launch_waits_for_their_checkpoint(tmp_path):
    proc = launch(tmp_path, *fake_run(tmp_path, 2, 100000, 1.0))
    wait_for(steps_reached(tmp_path, 2, 3), proc, "step 3 on both ranks")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    # both ranks got SIGTERM (not the launcher: it would have exited 1 at once), saved and
    # exited before the launch returned
    for rank in (0, 1):
        step, signum = (tmp_path / f"rank{rank}.ckpt").read_text().split()
        assert int(step) >= 3 and int(signum) == signal.SIGTERM
    assert code == 75, err
    assert "sent SIGTERM to 2 training process(es)" in err
    assert "run stopped at step" in err and "exit status 75" in err


def test_the_launch_outlives_a_launcher_that_exits_first(tmp_path):
    """A scheduler that signals every process of the job: the launcher exits at once,
    orphaning its ranks, which take 2 s to save; the launch returns only after that."""
    proc = launch(tmp_path, *fake_run(tmp_path, 2, 100000, 2.0))
    wait_for(steps_reached(tmp_path, 2, 2), proc, "step 2 on both ranks")
    launcher = int((tmp_path / "launcher.pid").read_text())
    proc.send_signal(signal.SIGTERM)
    os.kill(launcher, signal.SIGTERM)
    code, err = finish(proc)
    assert not psutil.pid_exists(launcher) or \
        psutil.Process(launcher).status() == psutil.STATUS_ZOMBIE
    assert code == 75, err
    assert all((tmp_path / f"rank{r}.ckpt").is_file() for r in (0, 1))
    # no rank is left running: the launch waited for them, not only for the launcher
    assert not [p for p in psutil.process_iter(["cmdline"])
                if str(WORKER) in (p.info["cmdline"] or []) and str(tmp_path) in p.info["cmdline"]
                and p.status() != psutil.STATUS_ZOMBIE]


def test_a_finished_run_exits_0(tmp_path):
    code, err = finish(launch(tmp_path, *fake_run(tmp_path, 2, 3, 0.0)))
    assert code == 0, err
    assert not list(tmp_path.glob("*.ckpt"))


def test_a_failing_rank_passes_the_launchers_status_on(tmp_path):
    code, _ = finish(launch(tmp_path, *fake_run(tmp_path, 2, 100, 0.0, "2")))
    assert code == 1


def test_sigint_to_a_single_process_run(tmp_path):
    """No launcher (plain ``audio-core train``): the rank itself is the command; Ctrl-C
    reaches it as SIGINT."""
    proc = launch(tmp_path, sys.executable, str(WORKER), str(tmp_path), "100000", "0.5")
    wait_for(steps_reached(tmp_path, 1, 2), proc, "step 2")
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 75, err
    assert int((tmp_path / "rank0.ckpt").read_text().split()[1]) == signal.SIGINT


def test_a_stop_before_any_rank_started_stops_the_command(tmp_path):
    proc = launch(tmp_path, sys.executable, "-c", "import time; time.sleep(120)")
    # the command runs once the launch's signal handlers are in place (not a fixed sleep:
    # on a loaded machine the interpreter may take longer than that to start)
    wait_for(lambda: psutil.Process(proc.pid).children(), proc, "the command to start")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, timeout=30)
    assert time.monotonic() - started < 20
    assert code == 75 and "before any training process started" in err, err


def test_grace_kills_ranks_that_do_not_stop(tmp_path):
    proc = launch(tmp_path, *fake_run(tmp_path, 1, 100000, 60.0), grace=1.0)
    wait_for(steps_reached(tmp_path, 1, 2), proc, "step 2")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc, timeout=30)
    assert time.monotonic() - started < 20
    assert "did not stop within --grace 1 s" in err
    assert not (tmp_path / "rank0.ckpt").exists()
    assert code == 75


def test_bad_usage(tmp_path):
    code, err = finish(launch(tmp_path))
    assert code == 2 and "give the command to run" in err
    code, err = finish(launch(tmp_path, "no-such-program-here"))
    assert code == 127 and "cannot run 'no-such-program-here'" in err
    with pytest.raises(ValueError, match="needs a command"):
        Supervisor([])


def test_status_files(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "3")
    status = WorkerStatus(tmp_path)
    status.report("running")
    status.report("stopped", 12)
    (tmp_path / "worker_1.json").write_text("{not json")  # half-written: skipped
    [record] = read_workers(tmp_path)
    assert record["pid"] == os.getpid() and record["rank"] == 3
    assert record["state"] == "stopped" and record["step"] == 12
    with pytest.raises(ValueError, match="worker state must be one of"):
        status.report("paused")
    WorkerStatus(None).report("running")  # outside `audio-core launch`: nothing written
    assert exit_status(-15) == 143 and exit_status(75) == 75
