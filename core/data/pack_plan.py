"""What ``audio-core data pack`` writes, in which order: sources, keys, buckets, the plan.

The plan is the ordered list of :class:`Sample` records: the source's samples (a folder's
sorted files, a caption list's or manifest's rows), shuffled with ``seed`` (``None``: source
order), then grouped by duration bucket (stable). It depends on the source and the options
only, which is what makes a resumed pack equal to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from audio_core.data.base import BadFile, DatasetError

__all__ = ["PackError", "PackOptions", "Plan", "Sample", "make_plan", "parse_size",
           "sample_key"]

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


class PackError(DatasetError):
    """Packing cannot start or go on (bad options, OUT in the way, nothing usable)."""


def parse_size(text: str | int) -> int:
    """``"512MB"`` -> 512_000_000 bytes (KB/MB/GB/TB powers of 1000, KiB/MiB/GiB of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([A-Za-z]*)\s*", str(text))
    unit = match and match[2].upper()
    if not match or unit not in _UNITS or float(match[1]) * _UNITS[unit] < 1:
        raise PackError(f"bad size {text!r}: expected a positive number with an optional "
                        "unit B, KB, MB, GB, TB (x1000) or KiB, MiB, GiB (x1024), e.g. 512MB")
    return int(float(match[1]) * _UNITS[unit])


@attrs.frozen
class PackOptions:
    """What the output depends on (workers do not count). ``buckets``: edges in seconds."""

    format: str = attrs.field(default="flac", validator=attrs.validators.in_(("flac", "wav")))
    shard_size: int = 512 * 10**6
    sample_rate: int | None = None
    channels: int | None = None
    buckets: tuple[float, ...] = ()
    labels: str | None = attrs.field(default=None,
                                     validator=attrs.validators.in_((None, "folders")))
    seed: int | None = 0

    def __attrs_post_init__(self) -> None:
        if list(self.buckets) != sorted(set(self.buckets)) or any(b <= 0 for b in self.buckets):
            raise PackError(f"buckets must be increasing positive seconds, got {self.buckets}")
        for name in ("sample_rate", "channels"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise PackError(f"{name} must be positive, got {getattr(self, name)}")


@attrs.frozen
class Sample:
    """One planned sample: a file (or a region of it: ``start``/``frames``, -1 = to the end)."""

    key: str
    path: str
    source: str
    label: int = -1
    text: str = ""
    start: int = 0
    frames: int = -1
    duration: float | None = None


def sample_key(source: str) -> str:
    """A stable key from a relative source name: readable, no '.' or '/', unique by hash."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", source).strip("_")[-60:] or "sample"
    return f"{slug}-{hashlib.sha1(source.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def _source_kind(src: Path) -> str:
    if src.is_dir():
        return "folder"
    if not src.is_file():
        raise PackError(f"source '{src}' does not exist (expected a folder, a caption list "
                        ".csv/.tsv/.jsonl or a manifest .jsonl[.gz])")
    name = src.name.lower()
    if name.endswith(".jsonl.gz"):
        return "manifest"
    if name.endswith((".csv", ".tsv")):
        return "captions"
    if name.endswith((".jsonl", ".ndjson")):
        with src.open(encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "{}")
        try:
            return "manifest" if "duration" in json.loads(first) else "captions"
        except (ValueError, TypeError):
            return "captions"  # read_captions names the bad line
    raise PackError(f"source '{src}': not a folder, caption list (.csv/.tsv/.jsonl) or "
                    "manifest (.jsonl[.gz])")


def _list_source(src: Path, labels: str | None
                 ) -> tuple[list[Sample], list[str], list[BadFile]]:
    """The source's samples (source order), class names and problems found on the way."""
    kind = _source_kind(src)
    if labels and kind != "folder":
        raise PackError(f"--labels {labels} needs a folder SRC; '{src}' is a {kind} list "
                        "(a manifest brings its own labels)")
    if kind == "manifest":
        from audio_core.data.manifest import read_manifest

        m = read_manifest(src)
        out = []
        for i in range(len(m)):
            start, written = int(m.start[i]), m.paths[i]
            source = f"{written}@{start}" if start else written
            out.append(Sample(sample_key(source), m.path(i), source, int(m.label[i]),
                              m.text[i], start, int(m.frames[i]),
                              float(m.frames[i] / m.sample_rate[i])))
        return out, list(m.classes), []
    if kind == "captions":
        from audio_core.data.captioned import read_captions

        rows = read_captions(src)
        return [Sample(sample_key(p), str(p if Path(p).is_absolute() else src.parent / p), p,
                       text=t) for p, t in rows], [], []
    from audio_core.data.index import walk_audio_files

    files, problems = walk_audio_files(src)
    rel = [f.relative_to(src).as_posix() for f in files]
    classes = sorted({r.split("/")[0] for r in rel if "/" in r}) if labels else []
    index = {c: i for i, c in enumerate(classes)}
    samples = [Sample(sample_key(r), str(f), r,
                      index[r.split("/")[0]] if labels and "/" in r else -1)
               for f, r in zip(files, rel, strict=True)]
    return samples, classes, [BadFile(p.path, p.reason) for p in problems]


def _bucket_edges(opts: PackOptions, durations: Sequence[float]) -> list[tuple[float, float]]:
    """``[(lo, hi)]`` per bucket: 0, the edges, then the longest duration (rounded up)."""
    top = max(opts.buckets[-1], float(np.ceil(max(durations, default=0.0) * 1000) / 1000))
    edges = [0.0, *opts.buckets] + ([top] if top > opts.buckets[-1] else [])
    return list(itertools.pairwise(edges))


@attrs.frozen
class Plan:
    """``samples`` in pack order; ``bucket[i]`` indexes ``buckets`` (``[(lo, hi)]`` seconds;
    empty without bucketing); ``classes``; ``bad`` files found while planning."""

    samples: list[Sample]
    bucket: list[int]
    buckets: list[tuple[float, float]]
    classes: list[str]
    bad: list[BadFile]

    @property
    def digest(self) -> str:
        """A fingerprint of the plan (keys, files, regions, buckets): a resume checks it."""
        h = hashlib.sha256()
        for s, n in zip(self.samples, self.bucket, strict=True):
            h.update(f"{s.key}\0{s.path}\0{s.start}\0{s.frames}\0{n}\n".encode(
                "utf-8", "surrogatepass"))
        return h.hexdigest()


def make_plan(src: Path, opts: PackOptions, progress: bool = True) -> Plan:
    """The plan of packing ``src`` with ``opts`` (see module docstring)."""
    samples, classes, bad = _list_source(src, opts.labels)
    seen: dict[str, int] = {}
    for i, s in enumerate(samples):  # a source listed twice: keys must stay unique
        n = seen[s.key] = seen.get(s.key, 0) + 1
        if n > 1:
            samples[i] = attrs.evolve(s, key=sample_key(f"{s.source}#{n}"))
    if opts.seed is not None:
        order = np.random.default_rng(opts.seed).permutation(len(samples))
        samples = [samples[i] for i in order]
    if not opts.buckets:
        return Plan(samples, [0] * len(samples), [], classes, bad)
    if any(s.duration is None for s in samples):  # read headers (threads, cached)
        from audio_core.data.index import scan_files

        entries = scan_files([s.path for s in samples], progress=progress or None)
        bad += [BadFile(e.path, e.error) for e in entries if e.error is not None]
        samples = [attrs.evolve(s, duration=e.duration)
                   for s, e in zip(samples, entries, strict=True) if e.error is None]
    durations = [float(s.duration or 0.0) for s in samples]  # known: scanned or given
    buckets = _bucket_edges(opts, durations)
    his = [hi for _, hi in buckets[:-1]]
    numbers = [int(np.searchsorted(his, d, side="right")) for d in durations]
    order = sorted(range(len(samples)), key=numbers.__getitem__)  # stable: plan order kept
    return Plan([samples[i] for i in order], [numbers[i] for i in order], buckets, classes,
                bad)
