"""Training from ``core.shards`` resumes exactly: the examples (ids and crop offsets) of a run
stopped and resumed equal those of a straight run.

- 2 ranks (torchrun, gloo): a run stopped by SIGTERM after step 3 and resumed in new
  processes with 2 DataLoader workers instead of none sees, step by step and rank by rank,
  the same examples and logs the same losses as a straight run.
- 1 rank: a run killed with SIGKILL mid-way and resumed from its newest checkpoint ends with
  the same examples as a straight run (the steps between that checkpoint and the kill are
  trained again, and the last record of each step wins).
"""

from __future__ import annotations

import json
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.datasets.shard_helpers import write_shards

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def examples(run: Path) -> dict[tuple[int, int], list]:
    """``{(rank, step): [[path, offset], ...]}`` of RUN/examples (last record of a step wins)."""
    out = {}
    for file in sorted((run / "examples").glob("rank_*.jsonl")):
        rank = int(file.stem.split("_")[1])
        for line in file.read_text().splitlines():
            rec = json.loads(line)
            out[(rank, rec["step"])] = [list(x) for x in zip(rec["paths"], rec["offsets"],
                                                             strict=True)]
    return out


def shard_config(helpers, tmp_path: Path, max_steps: int, every: int) -> Path:
    shards = write_shards(tmp_path / "shards", [7, 9, 5, 11, 8], seconds=0.4)  # 40 samples
    return helpers.write_config(
        tmp_path,
        data={"segment_seconds": 0.25, "batch_size": 2, "val": None,
              "train": {"name": "core.shards", "params": {"urls": str(shards), "buffer": 8}}},
        train={**helpers.TINY["train"], "max_steps": max_steps, "checkpoint_every": every,
               "log_examples": True})


def test_two_ranks_resume_exactly_with_other_worker_count(helpers, tmp_path):
    config = shard_config(helpers, tmp_path, max_steps=14, every=3)  # 14 > one epoch (10)
    base = ["train", str(config), f"run.output_dir={tmp_path}"]
    helpers.run_worker([
        {"argv": [*base, "run.name=full"], "result": "full.json"},
        {"argv": [*base, "run.name=split"], "sigterm_at": 3, "result": "split.json"},
    ], tmp_path)
    assert json.loads((tmp_path / "split.json").read_text())["code"] == 75
    helpers.run_worker([{"argv": ["train", "--resume", str(tmp_path / "split"),
                                  "data.num_workers=2"], "result": "resumed.json"}], tmp_path)
    assert json.loads((tmp_path / "resumed.json").read_text())["code"] == 0
    full, split = examples(tmp_path / "full"), examples(tmp_path / "split")
    assert sorted(full) == sorted(split) == [(r, s) for r in (0, 1) for s in range(1, 15)]
    assert split == full
    # the ranks read disjoint samples within each epoch (10 steps x 2 ranks x 2 items = 40)
    epoch = [p for (rank, step), items in full.items() if step <= 10 for p, _ in items]
    assert len(epoch) == len(set(epoch)) == 40
    full_l, split_l = (helpers.losses_by_step(tmp_path / n) for n in ("full", "split"))
    assert all(split_l[s] == full_l[s] for s in range(4, 15))


def test_sigkill_and_resume_gives_the_same_examples(helpers, tmp_path):
    """... also with a corrupt member in the data: it is reported in the run folder and
    replaced the same way in both runs."""
    config = shard_config(helpers, tmp_path, max_steps=24, every=5)
    tar = tmp_path / "shards" / "shard-000001.tar"
    with tarfile.open(tar) as t:
        member = next(m for m in t.getmembers() if m.name.endswith(".flac"))
    data = bytearray(tar.read_bytes())
    data[member.offset_data:member.offset_data + member.size] = b"\0" * member.size
    tar.write_bytes(bytes(data))
    cli = [str(helpers.BIN / "audio-core"), "train", str(config), f"run.output_dir={tmp_path}"]
    helpers.run_process([*cli, "run.name=full"], tmp_path)
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen([*cli, "run.name=killed"], cwd=tmp_path, env=helpers.child_env(),
                            stdout=log, stderr=log)
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        lines = metrics.read_text().splitlines() if metrics.is_file() else []
        if any(json.loads(x)["step"] >= 12 for x in lines if x.endswith("}")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    helpers.run_process([str(helpers.BIN / "audio-core"), "train", "--resume",
                         str(tmp_path / "killed")], tmp_path)
    assert examples(tmp_path / "killed") == examples(tmp_path / "full")
    for run in ("full", "killed"):
        errors = [json.loads(x) for x in
                  (tmp_path / run / "data_errors.jsonl").read_text().splitlines()]
        assert {(e["shard"], e["member"]) for e in errors} == {(str(tar), member.name)}


def test_two_ranks_stream_from_local_s3_and_http_servers(helpers, tmp_path, monkeypatch):
    """Two folders packed by `audio-core data pack`, one served by an S3-compatible server,
    one by an HTTP server (both on 127.0.0.1, started here): a 2-rank run reads every
    sample of both."""
    import numpy as np
    import soundfile as sf

    from audio_core.cli import main
    from tests.datasets.remote_servers import http_server, s3_server, upload

    rng = np.random.default_rng(0)
    for part in ("a", "b"):
        for i in range(12):
            wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 900) * np.arange(6400) / 16000)
            path = tmp_path / "src" / part / f"clip{i:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, wave.astype(np.float32), 16000)
    assert main(["data", "pack", str(tmp_path / "src" / "a"), str(tmp_path / "www" / "a"),
                 "--shard-size", "60KB", "--format", "wav"]) == 0
    assert main(["data", "pack", str(tmp_path / "src" / "b"), str(tmp_path / "b"),
                 "--shard-size", "8KB"]) == 0
    assert len(list((tmp_path / "b").glob("*.tar"))) > 1
    with s3_server(monkeypatch), http_server(tmp_path / "www") as (url, _):
        upload(tmp_path / "b", "audio", "b")
        urls = [f"{url}/a", "s3://audio/b"]
        config = helpers.write_config(
            tmp_path, data={"segment_seconds": 0.25, "batch_size": 2, "val": None,
                            "train": {"name": "core.shards", "params": {"urls": urls}}},
            train={**helpers.TINY["train"], "max_steps": 6, "log_examples": True})
        helpers.run_worker([{"argv": ["train", str(config), f"run.output_dir={tmp_path}",
                                      "run.name=remote"], "result": "remote.json"}], tmp_path)
    assert json.loads((tmp_path / "remote.json").read_text())["code"] == 0
    seen = [p for items in examples(tmp_path / "remote").values() for p, _ in items]
    assert len(seen) == 24 == len(set(seen))  # one epoch: 6 steps x 2 ranks x 2 items
    assert {p.split("/shard-")[0] for p in seen} == {f"{url}/a", "s3://audio/b"}
    assert not (tmp_path / "remote" / "data_errors.jsonl").exists()
