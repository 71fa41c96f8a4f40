"""One training process group per run folder: a second `train` of the same run name, or a
second `--resume` of a run, is refused naming the holder's pid; a lock left by a dead
process is taken over with a warning."""

from __future__ import annotations

import logging
import os
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
        assert lock_path(tmp_path / "run").read_text().strip() == str(os.getpid())
    assert f"from pid {dead.pid}, which is no longer running" in caplog.text


def test_only_rank_zero_locks(tmp_path):
    with run_lock(tmp_path / "run", rank=0), run_lock(tmp_path / "run", rank=1):
        pass
