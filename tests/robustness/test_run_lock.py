"""One training process group per run folder: a second `train` of the same run name, or a
second `--resume` of a run, is refused naming the holder's pid; a lock left by a dead
process is taken over with a warning."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from audio_core.cli import main
from audio_core.engine.run_dir import RunDirError, lock_path, run_lock

HOLD = """
import sys, time
from audio_core.engine.run_dir import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture()
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path/run``."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "RANK": "0"})
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def _config(tmp_path) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "extends": "tiny_autoencoder",
        "run": {"name": "run", "output_dir": str(tmp_path)}}))
    return str(path)


def test_a_second_train_of_the_same_run_names_the_holder(holder, tmp_path, capsys):
    assert main(["train", _config(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"in use by another training process (pid {holder.pid}" in err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_a_second_resume_names_the_holder(holder, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(Path(_config(tmp_path)).read_text())
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert main(["train", "--resume", str(tmp_path / "run")]) == 1
    assert f"pid {holder.pid}" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before


def test_the_lock_is_exclusive_within_a_process_too(tmp_path):
    with run_lock(tmp_path / "run"), pytest.raises(RunDirError, match=f"pid {os.getpid()}"), \
            run_lock(tmp_path / "run"):
        pass
    with run_lock(tmp_path / "run"):  # released
        pass


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(tmp_path / "run").write_text(f"{dead.pid}\n")
    with caplog.at_level(logging.WARNING), run_lock(tmp_path / "run"):
        assert lock_path(tmp_path / "run").read_text().split() == [str(os.getpid()),
                                                                  socket.gethostname()]
    assert f"from pid {dead.pid}, which is no longer running" in caplog.text


def test_only_rank_zero_locks(tmp_path):
    with run_lock(tmp_path / "run", rank=0), run_lock(tmp_path / "run", rank=1):
        pass


def test_force_unlock_breaks_a_lock_whose_holder_seems_alive(holder, tmp_path, caplog):
    """A holder that is alive to the lock (here: another process; in practice a crashed
    host whose lock a shared file system keeps) is broken only with ``force``."""
    with pytest.raises(RunDirError, match="pass --force-unlock"), run_lock(tmp_path / "run"):
        pass
    with caplog.at_level(logging.WARNING), run_lock(tmp_path / "run", force=True):
        pid, host = lock_path(tmp_path / "run").read_text().split()
        assert int(pid) == os.getpid() and host == socket.gethostname()
        # the new lock holds like any other
        with pytest.raises(RunDirError, match=f"pid {os.getpid()} on {host}"), \
                run_lock(tmp_path / "run"):
            pass
    assert f"--force-unlock: breaking the lock {lock_path(tmp_path / 'run')}" in caplog.text
    assert f"held by pid {holder.pid}" in caplog.text


def test_train_force_unlock_gets_past_the_lock(holder, tmp_path, capsys, caplog):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(Path(_config(tmp_path)).read_text())
    assert main(["train", "--resume", str(tmp_path / "run")]) == 1
    assert "pass --force-unlock" in capsys.readouterr().err
    with caplog.at_level(logging.WARNING):
        # past the lock, the resume stops at the next check: no checkpoint to continue
        assert main(["train", "--resume", str(tmp_path / "run"), "--force-unlock"]) == 1
    err = capsys.readouterr().err
    assert "in use by another training process" not in err and "checkpoint" in err, err
    assert f"held by pid {holder.pid}" in caplog.text


def test_a_lock_released_by_another_host_is_taken_over_with_its_name(tmp_path, caplog):
    lock_path(tmp_path / "run").write_text("4242 other-host\n")
    with caplog.at_level(logging.WARNING), run_lock(tmp_path / "run"):
        pass
    assert "from pid 4242 on other-host, which released it" in caplog.text
