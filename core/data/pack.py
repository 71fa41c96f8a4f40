"""``audio-core data pack SRC OUT``: write a sharded dataset (layout: :mod:`.shards.format`).

SRC is a folder (recursive; ``labels="folders"`` labels files by their top-level
sub-folder), a caption list (CSV/TSV/JSONL, :func:`~audio_core.data.captioned.read_captions`)
or a manifest (``.jsonl.gz``, or ``.jsonl`` whose first row has ``duration``). The *plan*
(:mod:`.pack_plan`) is the ordered list of samples. Workers decode, convert and encode
samples; the main process writes them in plan order, starting a new shard when the next
sample would pass ``shard_size`` or its bucket changes. The output depends only on the
plan and options, not on the number of workers.

Resume: after each shard, ``OUT/pack-progress.json`` records the shards done (size, sha256)
and the plan position. A re-run verifies them, drops half-written ``.tmp`` files and goes on
from there, so a killed run finishes byte-identical to an uninterrupted one. The last steps
write ``bad_files.json`` and ``index.json`` (atomically) and remove the progress file.
``OUT/.pack.lock`` keeps a second packer out; worker processes exit if the packer dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from audio_core.data.base import BadFile
from audio_core.data.pack_plan import PackError, PackOptions, Plan, make_plan, parse_size
from audio_core.data.shards.format import (
    FORMAT,
    INDEX_FILE,
    VERSION,
    ShardMembers,
    ShardRecord,
    ShardTarWriter,
    index_name,
    parse_index,
    shard_name,
)

__all__ = ["PackError", "PackOptions", "PackResult", "pack", "parse_size", "verify_shards"]

log = logging.getLogger("audio_core.data")

PROGRESS_FILE = "pack-progress.json"
LOCK_FILE = ".pack.lock"
BAD_FILES = "bad_files.json"
_MEMBER_OVERHEAD = 2048  # two tar headers and padding per sample, roughly


@attrs.frozen
class PackResult:
    """``index`` as :func:`parse_index` returns it; ``resumed_shards``: shards an earlier
    (killed) run had finished; ``already_done``: OUT was a finished pack of the same settings."""

    out: Path
    index: dict
    bad_files: list[BadFile]
    resumed_shards: int = 0
    already_done: bool = False


def _subtype(fmt: str, source_subtype: str) -> str:
    """Keep float WAV float and >16-bit audio 24-bit; else 16-bit PCM."""
    if fmt == "wav" and source_subtype in ("FLOAT", "DOUBLE"):
        return "FLOAT"
    if source_subtype in ("PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        return "PCM_24"
    return "PCM_16"


def encode_sample(job: tuple) -> tuple[bytes, dict] | tuple[None, str]:
    """Worker: decode ``(path, start, frames, rate, channels, fmt)`` and encode it.

    Returns ``(payload, {frames, sample_rate, channels})`` or ``(None, reason)``.
    """
    import soundfile as sf

    from audio_core.audio.io import AudioFileError, audio_info, load_audio

    path, start, frames, rate, channels, fmt = job
    try:
        info = audio_info(path)
        audio, sr = load_audio(path, sample_rate=rate, channels=channels, offset=start,
                               frames=frames)
    except AudioFileError as err:
        return None, err.reason
    data = audio.numpy().T  # (time, channels)
    subtype = _subtype(fmt, info.subtype)
    if subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, data, sr, format=fmt.upper(), subtype=subtype)
    return buf.getvalue(), {"frames": int(data.shape[0]), "sample_rate": int(sr),
                            "channels": int(data.shape[1])}


def _init_worker() -> None:
    """One torch thread; exit when the packing process dies (a SIGKILL leaves no orphans)."""
    import torch

    torch.set_num_threads(1)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="pack-parent-watch").start()


def _encoded(jobs: Iterable[tuple], workers: int) -> Iterator[tuple]:
    """``encode_sample`` over ``jobs``, in order, with ``workers`` processes (<= 1: here)."""
    if workers <= 1:
        yield from map(encode_sample, jobs)
        return
    pool = ProcessPoolExecutor(workers, initializer=_init_worker)
    window: deque = deque()
    try:
        for job in jobs:
            window.append(pool.submit(encode_sample, job))
            if len(window) >= 4 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _settings(src: Path, opts: PackOptions) -> dict:
    return {"source": str(src), **attrs.asdict(opts, value_serializer=lambda _i, _a, v:
                                                list(v) if isinstance(v, tuple) else v)}


def _prepare_out(src: Path, out: Path, settings: dict, overwrite: bool) -> dict | None:
    """Check OUT; returns the progress to resume from (None: start fresh, or done)."""
    if out == src or out in src.parents:
        raise PackError(f"OUT '{out}' is or contains the source '{src}'; choose another "
                        "output folder")
    if out.exists() and not out.is_dir():
        raise PackError(f"OUT '{out}' is a file; expected a folder for the shards")
    if not out.exists():
        return None
    found = None
    for name in (INDEX_FILE, PROGRESS_FILE):
        try:
            found = json.loads((out / name).read_text(encoding="utf-8"))
            break
        except (OSError, ValueError):
            continue
    if found is not None and found.get("pack") == settings:
        return found
    if found is None and all(f.name.startswith(".") and f.name.endswith((".tmp", ".lock"))
                             for f in out.iterdir()):  # empty, or a pack killed early
        return None
    if not overwrite:
        old = (found or {}).get("pack") or {}
        diff = ", ".join(f"{k}: {old.get(k)!r} there, {v!r} now" for k, v in settings.items()
                         if old.get(k) != v)
        what = (f"was packed from another source or with other options ({diff})" if found
                else "is not an empty folder nor a pack")
        raise PackError(f"OUT '{out}' {what}; choose another folder or pass --overwrite "
                        "(renames the old one aside)")
    stamp = f"{out.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
    aside, n = out.with_name(stamp), 1
    while aside.exists():
        aside, n = out.with_name(f"{stamp}-{n}"), n + 1
    out.rename(aside)
    log.warning("moved the old %s aside to %s", out, aside)
    return None


def _resume_point(out: Path, progress: dict | None, digest: str
                  ) -> tuple[list[dict], list[dict]]:
    """Shards of ``progress`` whose files are intact (in order; stops at the first that is
    not), their bad files; removes half-written files and shards not recorded."""
    done: list[dict] = []
    if progress and progress.get("plan") != digest:
        log.warning("the files of %s changed since the interrupted pack; packing from the "
                    "start", progress["pack"]["source"])
        progress = None
    for shard in (progress or {}).get("shards", []):
        tar = out / shard["name"]
        if not (tar.is_file() and (out / index_name(shard["name"])).is_file()
                and tar.stat().st_size == shard["bytes"] and _sha256(tar) == shard["sha256"]):
            log.warning("shard %s is incomplete or changed; packing again from it", tar)
            break
        done.append(shard)
    keep = {s["name"] for s in done} | {index_name(s["name"]) for s in done}
    for f in out.iterdir():
        if f.name.endswith(".tmp") or (f.name.startswith("shard-") and f.name not in keep):
            f.unlink()
    return done, done[-1]["bad_files"] if done else []


def pack(src: str | os.PathLike, out: str | os.PathLike, opts: PackOptions | None = None,
         *, workers: int = 1, overwrite: bool = False, progress: bool = False) -> PackResult:
    """Pack ``src`` into shards in ``out`` (see module docstring); resumes a killed run."""
    src, out = Path(src).expanduser().resolve(), Path(out).expanduser().resolve()
    opts = opts or PackOptions()
    settings = _settings(src, opts)
    found = _prepare_out(src, out, settings, overwrite)
    if found is not None and "format" in found:  # a finished pack with the same settings
        bad = json.loads((out / BAD_FILES).read_text(encoding="utf-8"))
        return PackResult(out, parse_index(found, str(out / INDEX_FILE)),
                          [BadFile(**b) for b in bad], already_done=True)
    plan = make_plan(src, opts, progress)
    if not plan.samples:
        raise PackError(f"no audio files found in source '{src}' "
                        f"(problems: {[attrs.asdict(b) for b in plan.bad[:3]]})")
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        return _pack(src, out, opts, settings, found, plan, workers, progress)


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``OUT/.pack.lock``: a POSIX record lock, which the kernel drops when this process
    dies and worker processes do not inherit."""
    with (out / LOCK_FILE).open("w") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise PackError(f"another `audio-core data pack` is writing '{out}'; wait for it "
                            "or stop it") from exc
        yield


def _pack(src: Path, out: Path, opts: PackOptions, settings: dict, found: dict | None,
          plan: Plan, workers: int, progress: bool) -> PackResult:
    """Write ``plan``'s shards from where ``found`` (the progress file) left off."""
    digest, buckets, numbers = plan.digest, plan.buckets, plan.bucket
    samples, classes, plan_bad = plan.samples, plan.classes, plan.bad
    done, bad_dicts = _resume_point(out, found, digest)
    position, resumed = (done[-1]["next"] if done else 0), len(done)
    bad = plan_bad + [BadFile(**b) for b in bad_dicts]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(samples), initial=position, desc="pack", unit="file",
               disable=not progress, leave=False)
    jobs = ((s.path, s.start, s.frames, opts.sample_rate, opts.channels, opts.format)
            for s in samples[position:])
    writer: ShardTarWriter | None = None
    writer_bucket = -1

    def close(next_position: int) -> None:  # the plan position a resumed run starts at
        nonlocal writer
        assert writer is not None, "close() without an open shard"
        record = writer.close(buckets[writer_bucket] if buckets else None).to_dict()
        done.append({**record, "next": next_position,
                     "bad_files": [attrs.asdict(b) for b in bad[len(plan_bad):]]})
        _write_json(out / PROGRESS_FILE, {"pack": settings, "plan": digest, "shards": done})
        writer = None

    try:
        for i, (payload, meta) in enumerate(_encoded(jobs, workers), position):
            s = samples[i]
            bar.update()
            if payload is None:
                bad.append(BadFile(s.path, meta))
                continue
            if writer is not None and (numbers[i] != writer_bucket or writer.bytes_written
                                       + len(payload) + _MEMBER_OVERHEAD > opts.shard_size):
                close(i)
            if writer is None:
                writer, writer_bucket = ShardTarWriter(out, shard_name(len(done))), numbers[i]
            writer.add(s.key, payload, opts.format, {
                "source": s.source, "duration": round(meta["frames"] / meta["sample_rate"], 6),
                **meta, "label": s.label,
                "class": classes[s.label] if 0 <= s.label < len(classes) else "",
                "text": s.text})
        if writer is not None:
            close(len(samples))
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()
    return attrs.evolve(_finish(src, out, settings, opts, done, classes, bad),
                        resumed_shards=resumed)


def _finish(src: Path, out: Path, settings: dict, opts: PackOptions, done: list[dict],
            classes: list[str], bad: list[BadFile]) -> PackResult:
    _write_json(out / BAD_FILES, [attrs.asdict(b) for b in bad])
    if not done:
        raise PackError(f"nothing usable in source '{src}': all {len(bad)} file(s) are bad "
                        f"(see {out / BAD_FILES})")
    rates = {r for s in done for r in ShardMembers.from_json(
        (out / index_name(s["name"])).read_text(encoding="utf-8"), s["name"]).sample_rate}
    shards = [ShardRecord(s["name"], s["samples"], s["seconds"], s["bytes"], s["sha256"],
                          tuple(s["bucket"]) if s["bucket"] else None).to_dict()
              for s in done]
    index = {"format": FORMAT, "version": VERSION, "content": "audio",
             "samples": sum(s["samples"] for s in shards),
             "seconds": round(sum(s["seconds"] for s in shards), 6), "classes": classes,
             "sample_rate": opts.sample_rate or (rates.pop() if len(rates) == 1 else None),
             "shards": shards, "pack": settings}
    _write_json(out / INDEX_FILE, index)
    (out / PROGRESS_FILE).unlink(missing_ok=True)
    (out / LOCK_FILE).unlink(missing_ok=True)
    return PackResult(out, parse_index(index, str(out / INDEX_FILE)), bad)


def verify_shards(out: str | os.PathLike) -> tuple[dict, list[str]]:
    """Check every shard of ``out/index.json`` (exists, size, sha256, member index);
    returns the parsed index and one problem line per bad shard."""
    out = Path(out)
    try:
        data = json.loads((out / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackError(f"'{out / INDEX_FILE}' cannot be read ({exc}); expected a folder "
                        "written by `audio-core data pack`") from exc
    index = parse_index(data, str(out / INDEX_FILE))
    problems = []
    for shard in index["shards"]:
        tar = out / shard.name
        if not tar.is_file():
            problems.append(f"{shard.name}: missing")
        elif tar.stat().st_size != shard.bytes:
            problems.append(f"{shard.name}: {tar.stat().st_size} bytes, index.json says "
                            f"{shard.bytes} (truncated or replaced)")
        elif _sha256(tar) != shard.sha256:
            problems.append(f"{shard.name}: sha256 differs from index.json (corrupt)")
        elif not (out / index_name(shard.name)).is_file():
            problems.append(f"{shard.name}: member index {index_name(shard.name)} missing")
    return index, problems
