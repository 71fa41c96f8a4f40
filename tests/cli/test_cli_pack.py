"""`audio-core data pack | manifest | verify`: a SIGKILLed pack resumes byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_core.cli import main

#: Runs the CLI with encoding slowed down, so a kill lands mid-pack deterministically
#: (forked worker processes find ``slow`` in their copy of ``__main__``).
SLOW_MAIN = """
import sys, time
import audio_core.data.pack as pack
real = pack.encode_sample
def slow(job):
    time.sleep(0.3)
    return real(job)
pack.encode_sample = slow
from audio_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def make_folder(root: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        label = ("a", "b", "c")[i % 3]
        path = root / label / f"clip{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.1 * rng.standard_normal(4000 + 800 * i).astype(np.float32), 16000)
    return root


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.iterdir()) if p.is_file()}


def run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SLOW_MAIN, *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_sigkill_then_rerun_is_byte_identical_to_a_straight_run(tmp_path):
    """Killed with 2 worker processes (which must not outlive it), resumed, compared with
    a straight in-process run."""
    import psutil

    src = make_folder(tmp_path / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "AUDIO_CORE_CACHE_DIR": str(tmp_path / "cache")}
    args = ["data", "pack", str(src), "OUT", "--labels", "folders", "--shard-size", "40KB",
            "--workers", "2", "--no-progress"]
    straight = tmp_path / "straight"
    assert main([a if a != "OUT" else str(straight) for a in args[:-3]]
                + ["--workers", "1", "--no-progress"]) == 0

    out = tmp_path / "out"
    killed_args = [a if a != "OUT" else str(out) for a in args]
    proc = subprocess.Popen([sys.executable, "-c", SLOW_MAIN, *killed_args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = out / "pack-progress.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if progress.exists() and len(json.loads(progress.read_text())["shards"]) >= 2:
            break
        time.sleep(0.02)
    workers = psutil.Process(proc.pid).children()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and len(workers) == 2
    _, alive = psutil.wait_procs(workers, timeout=10)
    for orphan in alive:
        orphan.kill()
    assert alive == []  # the workers noticed their parent died and exited
    assert not (out / "index.json").exists()  # killed mid-way
    done = len(json.loads(progress.read_text())["shards"])
    assert done < len(json.loads((straight / "index.json").read_text())["shards"])

    (out / ".shard-000002.tar.tmp").write_bytes(b"half a shard")  # as a kill can leave
    rerun = run_cli(killed_args, env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{done} shard(s) from an earlier run" in rerun.stdout
    want, got = digests(straight), digests(out)  # index.json, bad_files.json, shards
    assert got == want and len(got) > 2 + 2 * done
    assert not any(n.endswith(".tmp") or n.startswith("pack-") for n in os.listdir(out))
    assert main(["data", "verify", str(out)]) == 0


def test_verify_names_bad_shards_and_bad_options_are_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUDIO_CORE_CACHE_DIR", str(tmp_path / "cache"))
    src = make_folder(tmp_path / "src", n=4)
    assert main(["data", "pack", str(src), str(tmp_path / "out"), "--shard-size", "8KB",
                 "--workers", "0", "--sample-rate", "8000", "--buckets", "0.3"]) == 0
    assert "packed 4 samples" in capsys.readouterr().out
    (tmp_path / "out" / "shard-000001.tar").unlink()
    assert main(["data", "verify", str(tmp_path / "out")]) == 1
    assert "shard-000001.tar: missing" in capsys.readouterr().out
    for flag, value, expected in (("--shard-size", "lots", "bad size 'lots'"),
                                  ("--buckets", "2,x", "argument --buckets: expected")):
        with pytest.raises(SystemExit) as usage:  # a usage error, before any work
            main(["data", "pack", str(src), str(tmp_path / "o2"), flag, value])
        assert usage.value.code == 2 and expected in capsys.readouterr().err
    assert main(["data", "pack", str(tmp_path / "nope"), str(tmp_path / "o3")]) == 1
    assert "nope' does not exist" in capsys.readouterr().err


def test_manifest_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUDIO_CORE_CACHE_DIR", str(tmp_path / "cache"))
    src = make_folder(tmp_path / "src", n=3)
    (src / "a" / "bad.wav").write_bytes(b"")
    out = tmp_path / "m.jsonl"
    assert main(["data", "manifest", str(src), str(out), "--labels", "folders",
                 "--absolute", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 entries" in printed and "bad.wav" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["path"] == str(src / "a" / "clip0.wav") and rows[0]["label"] == "a"
    assert main(["data", "pack", str(out), str(tmp_path / "shards"), "--no-shuffle",
                 "--workers", "0"]) == 0
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert index["classes"] == ["a", "b", "c"] and index["samples"] == 3
