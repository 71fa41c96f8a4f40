"""Audio delivered to the trainer from a folder, its manifest and its shards (issue 21).

    python benchmarks/data_throughput.py [--files 10000 --workers 0 2 --rounds 3]
        [--manifest-rows 1000000] [--work DIR] [--json OUT.json]

Builds (once, under ``--work``) a folder of ``--files`` short WAV files (0.5-1.5 s, 16 kHz
mono), its manifest (``audio-core data manifest``) and its shards (``audio-core data
pack``), then measures, for each source and each ``--workers`` count, the seconds of audio
per second that ``make_dataloader`` hands the training loop (0.5 s crops, batches of 16,
the trainer's loader), from a cold page cache: every file of the source is dropped from
the page cache first (``posix_fadvise(DONTNEED)``). The sources:

- ``folder``: ``core.folder`` (its index cached, so only reading is timed);
- ``manifest``: ``core.manifest`` on the same files;
- ``shards_flac``: ``core.shards`` on the folder packed as FLAC (the pack default);
- ``shards_wav``: packed as 16-bit WAV (``--format wav``): a crop is one read of exactly
  its PCM bytes, no decoder;
- ``http_wav``: the WAV shards over an HTTP server on 127.0.0.1 (one range request per
  crop).

Start-up: building each dataset (folder: first index of the 10k files, no cache; manifest
of ``--manifest-rows`` synthetic rows, whose files need not exist: start-up never stats
them), and the resident memory it adds. Targets (issue 21): shards >= 3x the folder's
throughput from a cold cache; a 1,000,000-entry manifest starts in < 10 s; memory flat in
the number of samples. Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
RATE, SEGMENT, BATCH = 16000, 0.5, 16


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_folder(folder: Path, files: int) -> None:
    """``files`` WAVs of 0.5-1.5 s (noise-modulated tones), in 100 sub-folders."""
    if (folder / ".complete").is_file():
        return
    rng = np.random.default_rng(0)
    for i in range(files):
        n = int(rng.uniform(0.5, 1.5) * RATE)
        t = np.arange(n) / RATE
        x = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.02 * rng.standard_normal(n)
        path = folder / f"d{i % 100:02d}" / f"clip{i:06d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x.astype(np.float32), RATE, subtype="PCM_16")
    (folder / ".complete").touch()


def drop_cache(folder: Path) -> int:
    """Evict every file under ``folder`` from the page cache; returns how many."""
    count = 0
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            count += 1
    return count


def throughput(dataset, workers: int, batches: int) -> float:
    """Seconds of audio per second handed out by the trainer's loader."""
    from audio_core.data.loader import make_dataloader

    loader = make_dataloader(dataset, batch_size=BATCH, seed=0, num_workers=workers)
    it = iter(loader)
    started = time.perf_counter()
    got = 0
    for _ in range(batches):
        got += next(it)["audio"].shape[0]
    elapsed = time.perf_counter() - started
    del it
    return got * SEGMENT / elapsed


def build(kind: str, work: Path, url: str | None = None):
    from audio_core.data.folders import FolderDataset
    from audio_core.data.manifest import ManifestDataset
    from audio_core.data.shards.dataset import ShardDataset

    common = {"sample_rate": RATE, "channels": 1, "segment_seconds": SEGMENT}
    if kind == "folder":
        return FolderDataset(work / "folder", verify=False, **common)
    if kind == "manifest":
        return ManifestDataset(work / "folder.jsonl.gz", **common)
    if kind.startswith("shards_"):
        return ShardDataset(str(work / kind), **common)
    return ShardDataset(f"{url}/shards_wav", **common)


def startup(args, work: Path) -> dict:
    """Start-up seconds and added memory: folder index (no cache) vs a big manifest."""
    from audio_core.data.folders import FolderDataset
    from audio_core.data.manifest import ManifestDataset, write_manifest

    out = {}
    os.environ["AUDIO_CORE_CACHE_DIR"] = tempfile.mkdtemp(prefix="idx-", dir=work)
    drop_cache(work / "folder")
    gc.collect()
    before, t = rss(), time.perf_counter()
    ds = FolderDataset(work / "folder", verify=False, sample_rate=RATE)
    out["folder_index_s"] = time.perf_counter() - t
    out["folder_files"] = len(ds)
    out["folder_rss_mb"] = (rss() - before) / 2**20
    del ds
    for rows in sorted({args.manifest_rows // 10, args.manifest_rows}):
        path = work / f"synthetic_{rows}.jsonl.gz"
        if not path.is_file():
            write_manifest([{"path": f"/data/set/{i % 1000:03d}/utt{i:08d}.flac",
                             "duration": 1.0 + (i % 97) / 10, "sample_rate": 16000,
                             "text": f"utterance {i}"} for i in range(rows)], path)
        gc.collect()
        before, t = rss(), time.perf_counter()
        ds = ManifestDataset(path, sample_rate=RATE)
        out[f"manifest_{rows}_s"] = time.perf_counter() - t
        out[f"manifest_{rows}_rss_mb"] = (rss() - before) / 2**20
        assert len(ds) == rows
        del ds
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", type=int, default=10000)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batches", type=int, default=60, help="batches of 16 per measurement")
    p.add_argument("--manifest-rows", type=int, default=1_000_000)
    p.add_argument("--work", type=Path,
                   default=Path(tempfile.gettempdir()) / "audio-core-data-bench")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from audio_core.data.manifest import folder_manifest
    from audio_core.data.pack import pack
    from audio_core.data.pack_plan import PackOptions

    sys.path.insert(0, str(ROOT / "tests" / "datasets"))
    from remote_servers import http_server  # the tests' loopback server with byte ranges

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    make_folder(work / "folder", args.files)
    if not (work / "folder.jsonl.gz").is_file():
        folder_manifest(work / "folder", work / "folder.jsonl.gz", absolute=True)
    pack(work / "folder", work / "shards_flac", workers=2)
    pack(work / "folder", work / "shards_wav", PackOptions(format="wav"), workers=2)
    prep = time.perf_counter() - t
    results: dict = {"load": os.getloadavg(), "files": args.files, "prepare_s": prep,
                     "startup": startup(args, work), "throughput": {}}
    with http_server(work) as (url, _):
        caches = {"folder": "folder", "manifest": "folder", "shards_flac": "shards_flac",
                  "shards_wav": "shards_wav", "http_wav": "shards_wav"}
        for workers in args.workers:
            for rnd in range(args.rounds):
                for kind in caches:  # interleaved: drifting load hits all
                    # a new dataset (no blocks cached in this process), files out of the
                    # page cache (the folder's index stays cached: reading is timed)
                    ds = build(kind, work, url)
                    drop_cache(work / caches[kind])
                    speed = throughput(ds, workers, args.batches)
                    results["throughput"].setdefault(f"{kind}/w{workers}", []).append(speed)
                    print(f"round {rnd} workers {workers} {kind:12s} {speed:8.1f} audio-s/s",
                          flush=True)
    results["load_after"] = os.getloadavg()
    print("\nsource / workers     median audio-s/s   x folder (median of per-round ratios)")
    for key, values in results["throughput"].items():
        kind, w = key.split("/")
        base = results["throughput"][f"folder/{w}"]
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        print(f"{key:20s} {statistics.median(values):12.1f} {statistics.median(ratios):10.2f}x")
    print("\nstart-up:", json.dumps(results["startup"], indent=1))
    print(f"load average before/after: {results['load']} / {results['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
