"""``core.manifest``: audio files listed in a JSONL or ``.jsonl.gz`` manifest (audiocraft style).

One JSON object per line::

    {"path": "dog/a.wav", "duration": 3.2, "sample_rate": 16000, "channels": 1,
     "frames": 51200, "text": "a dog barks", "label": "dog", "offset": 0.0}

``path``, ``duration`` (seconds) and ``sample_rate`` are required. ``frames`` defaults to
``round(duration * sample_rate)``; ``offset`` (seconds, default 0) makes the entry the region
``[offset, offset + duration)`` of the file; ``label`` is a class name or an int; ``text`` a
caption. Relative paths are relative to the manifest's folder.

Start-up reads the manifest only: no audio file is opened or stat'ed. Rows become column
arrays (:class:`Manifest`), not a Python object per row, so a million rows load in seconds
and DataLoader workers share them copy-on-write. Bad files surface when a crop reads them
and are skipped as in :class:`~audio_core.data.base.AudioFileDataset`.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from audio_core.data.base import AudioFileDataset, DatasetError
from audio_core.data.index import FileEntry

__all__ = ["Manifest", "ManifestDataset", "ManifestError", "read_manifest", "write_manifest"]

_CHUNK = 50_000  # rows parsed at a time (bounds the transient dicts)


class ManifestError(DatasetError):
    """A manifest is missing or a row is malformed (the message names file:line and field)."""


class Strings(Sequence[str]):
    """Many strings in one UTF-8 blob plus an offsets array: ``strings[i] -> str``."""

    def __init__(self, parts: Sequence[bytes]) -> None:
        self._blob = b"".join(parts)
        self._ends = np.cumsum([len(p) for p in parts], dtype=np.int64)

    @classmethod
    def concat(cls, pieces: Sequence[Strings]) -> Strings:
        out = cls([])
        out._blob = b"".join(p._blob for p in pieces)
        shifts = np.cumsum([0] + [len(p._blob) for p in pieces[:-1]], dtype=np.int64)
        out._ends = np.concatenate([p._ends + s for p, s in zip(pieces, shifts, strict=True)]
                                   or [np.zeros(0, np.int64)])
        return out

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i):  # type: ignore[override]
        start = int(self._ends[i - 1]) if i > 0 else 0
        return self._blob[start:int(self._ends[i])].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))


class Manifest:
    """Column view of a manifest: ``paths``/``text`` (:class:`Strings`), and int arrays of
    shape (rows,): ``frames`` (entry length at ``sample_rate``), ``sample_rate``,
    ``channels`` (0: not given), ``start`` (first file frame), ``label`` (-1: none).
    ``classes`` names string labels (sorted; label indexes it); ``base`` resolves
    relative paths."""

    def __init__(self, where: str, base: str, paths: Strings, text: Strings,
                 frames: np.ndarray, sample_rate: np.ndarray, channels: np.ndarray,
                 start: np.ndarray, label: np.ndarray, classes: list[str]) -> None:
        self.where, self.base, self.paths, self.text = where, base, paths, text
        self.frames, self.sample_rate, self.channels = frames, sample_rate, channels
        self.start, self.label, self.classes = start, label, classes

    def __len__(self) -> int:
        return len(self.frames)

    def path(self, i: int) -> str:
        """Row ``i``'s file, absolute."""
        return os.path.join(self.base, self.paths[i])

    @property
    def duration(self) -> np.ndarray:
        """Seconds per row, float64 (rows,)."""
        return self.frames / self.sample_rate


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _fail(where: Path, line: int, message: str) -> ManifestError:
    return ManifestError(f"{where}:{line}: {message}")


def _check_row(where: Path, line: int, text: str) -> dict:
    """Parse and validate one row; raises :class:`ManifestError` naming file:line and field."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(where, line, f"not a JSON object ({exc})") from exc
    if not isinstance(row, dict):
        raise _fail(where, line, f"expected a JSON object, got {row!r:.60}")
    if not isinstance(row.get("path"), str) or not row["path"]:
        raise _fail(where, line, f"'path' must be a non-empty string, got {row.get('path')!r}")
    for name, kind in (("duration", float), ("sample_rate", int), ("frames", int),
                       ("channels", int), ("offset", float)):
        value = row.get(name)
        if value is None and name in ("duration", "sample_rate"):
            raise _fail(where, line, f"missing '{name}' (each row needs path, duration in "
                                     "seconds and sample_rate)")
        if value is None:
            continue
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_ok or (kind is int and value != int(value)) or not np.isfinite(value):
            what = "an integer" if kind is int else "a number"
            raise _fail(where, line, f"'{name}' must be {what}, got {value!r}")
        if value < 0 or (value == 0 and name in ("duration", "sample_rate", "frames",
                                                   "channels")):
            raise _fail(where, line, f"'{name}' must be positive, got {value!r}")
    if not isinstance(row.get("text", ""), str):
        raise _fail(where, line, f"'text' must be a string, got {row['text']!r:.60}")
    label = row.get("label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int | str)):
        raise _fail(where, line, f"'label' must be a class name or an int, got {label!r:.60}")
    return row


def _parse_chunk(where: Path, numbers: list[int], lines: list[str]) -> list[dict]:
    """All rows of a chunk, fast (one JSON parse) when they are well formed."""
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
        for row in rows:  # the few checks the fast path needs; else _check_row says why
            if not (isinstance(row, dict) and isinstance(row.get("path"), str) and row["path"]
                    and type(row.get("duration")) in (int, float) and row["duration"] > 0
                    and type(row.get("sample_rate")) is int and row["sample_rate"] > 0):
                raise ValueError
            for name in ("frames", "channels"):
                if name in row and not (type(row[name]) is int and row[name] > 0):
                    raise ValueError
            if "offset" in row and not (type(row["offset"]) in (int, float)
                                        and row["offset"] >= 0):
                raise ValueError
            if not isinstance(row.get("text", ""), str) or type(row.get("label")) not in (
                    int, str, type(None)):
                raise ValueError
        return rows
    except ValueError:
        return [_check_row(where, n, text) for n, text in zip(numbers, lines, strict=True)]


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read a ``.jsonl`` / ``.jsonl.gz`` manifest into columns (see :class:`Manifest`)."""
    where = Path(path).expanduser()
    if not where.is_file():
        raise ManifestError(f"manifest '{where}' does not exist (expected a .jsonl or "
                            ".jsonl.gz file, one JSON object per line)")
    paths, texts, cols = [], [], {k: [] for k in ("frames", "rate", "ch", "start", "label")}
    names: dict[str, int] = {}  # class name -> id in order of appearance
    kinds: dict[type, int] = {}  # label type -> first line using it

    def flush(numbers: list[int], lines: list[str]) -> None:
        rows = _parse_chunk(where, numbers, lines)
        rate = np.array([r["sample_rate"] for r in rows], np.int64)
        dur = np.array([r["duration"] for r in rows], np.float64)
        frames = np.array([r.get("frames") or 0 for r in rows], np.int64)
        frames = np.where(frames > 0, frames, np.round(dur * rate).astype(np.int64))
        bad = np.flatnonzero(frames <= 0)
        if len(bad):
            raise _fail(where, numbers[bad[0]], "'duration' is shorter than one sample")
        offset = np.array([r.get("offset") or 0 for r in rows], np.float64)
        cols["frames"].append(frames)
        cols["rate"].append(rate.astype(np.int32))
        cols["ch"].append(np.array([r.get("channels") or 0 for r in rows], np.int16))
        cols["start"].append(np.round(offset * rate).astype(np.int64))
        labels = np.full(len(rows), -1, np.int64)
        for k, (n, r) in enumerate(zip(numbers, rows, strict=True)):
            value = r.get("label")
            if value is None:
                continue
            first = kinds.setdefault(type(value), n)
            if len(kinds) > 1:
                raise _fail(where, n, f"'label' mixes class names and ints (line {first} "
                                      f"uses a {type(value).__name__} too); use one kind")
            labels[k] = names.setdefault(value, len(names)) if isinstance(value, str) else value
        cols["label"].append(labels)
        paths.append(Strings([r["path"].encode() for r in rows]))
        texts.append(Strings([r.get("text", "").encode() for r in rows]))

    numbers, lines = [], []
    try:
        with _open_text(where) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    numbers.append(n)
                    lines.append(line)
                if len(lines) >= _CHUNK:
                    flush(numbers, lines)
                    numbers, lines = [], []
            if lines:
                flush(numbers, lines)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ManifestError(f"manifest '{where}' cannot be read ({exc})") from exc
    if not paths:
        raise ManifestError(f"manifest '{where}' lists no entries")
    label = np.concatenate(cols["label"])
    classes = sorted(names)
    if names:  # ids in order of appearance -> index of the sorted class name
        remap = np.empty(len(names), np.int64)
        for name, i in names.items():
            remap[i] = classes.index(name)
        label = np.where(label >= 0, remap[np.maximum(label, 0)], -1)
    return Manifest(str(where), str(where.parent.resolve()), Strings.concat(paths),
                    Strings.concat(texts), np.concatenate(cols["frames"]),
                    np.concatenate(cols["rate"]), np.concatenate(cols["ch"]),
                    np.concatenate(cols["start"]), label.astype(np.int32), classes)


class _Entries(Sequence[FileEntry]):
    """The dataset's rows as :class:`FileEntry` records, built on access."""

    def __init__(self, manifest: Manifest, rows: np.ndarray) -> None:
        self.manifest, self.rows = manifest, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i):  # type: ignore[override]
        m, r = self.manifest, int(self.rows[i])
        return FileEntry(m.path(r), 0, 0, int(m.sample_rate[r]), int(m.channels[r]),
                         int(m.frames[r]))


class ManifestDataset(AudioFileDataset):
    """Crops of the entries of manifest ``path`` (see module docstring), with ``label``
    (an index into ``classes`` for class names, else the manifest's int) and ``text``.

    Rows shorter than ``min_seconds`` are left out; other options as in
    :class:`~audio_core.data.folders.FolderDataset` (no ``verify``: files are not opened
    before a crop reads them).
    """

    def __init__(self, path: str | os.PathLike, *, min_seconds: float = 0.0,
                 random_crop: bool = True, sample_rate: int, channels: int | None = 1,
                 segment_seconds: float | None = 1.0, seed: int = 0) -> None:
        manifest = read_manifest(path)
        rows = np.flatnonzero(manifest.duration >= min_seconds)
        if not len(rows):
            raise DatasetError(f"manifest '{manifest.where}': none of its {len(manifest)} "
                               f"entries is at least min_seconds={min_seconds} long")
        super().__init__([], sample_rate=sample_rate, channels=channels,
                         segment_seconds=segment_seconds, seed=seed, random_crop=random_crop)
        self.manifest, self.root = manifest, manifest.where
        self.files = _Entries(manifest, rows)  # type: ignore[assignment]
        self.labels = manifest.label[rows]  # type: ignore[assignment]
        self.classes = manifest.classes
        self.class_to_index = {c: i for i, c in enumerate(self.classes)}

    def _span(self, i: int) -> tuple[int, int]:
        r = int(self.files.rows[i])
        return int(self.manifest.start[r]), int(self.manifest.frames[r])

    def _item(self, i, rng) -> dict:
        item = super()._item(i, rng)
        item["text"] = self.manifest.text[int(self.files.rows[i])]
        return item


def write_manifest(rows: Sequence[dict], out: str | os.PathLike) -> Path:
    """Write ``rows`` as JSONL (gzip when ``out`` ends in ``.gz``; reproducible bytes),
    atomically; returns ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    if out.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out


def folder_manifest(src: str | os.PathLike, out: str | os.PathLike, *,
                    labels: str | None = None, absolute: bool = False, verify: bool = False,
                    workers: int | None = None, progress: bool = False
                    ) -> tuple[Path, int, list[dict]]:
    """Write the manifest of every audio file under folder ``src`` to ``out``.

    Headers are read in ``workers`` threads (``verify`` also decodes every sample). With
    ``labels="folders"`` a file's top-level sub-folder is its ``label`` (a class name).
    Paths are relative to ``out``'s folder unless ``absolute``. Returns (out, rows written,
    bad files as ``[{path, reason}]``).
    """
    from audio_core.data.index import scan_files, walk_audio_files

    root, out = Path(src).expanduser().resolve(), Path(out).expanduser().resolve()
    if not root.is_dir():
        raise ManifestError(f"source '{root}' is not a folder (expected a folder of audio "
                            "files, searched recursively)")
    if not out.name.endswith((".jsonl", ".jsonl.gz")):
        raise ManifestError(f"manifest name '{out.name}' must end in .jsonl or .jsonl.gz")
    files, problems = walk_audio_files(root)
    entries = scan_files(files, verify=verify, progress=progress or None, num_threads=workers)
    bad = [{"path": p.path, "reason": p.reason} for p in problems]
    bad += [{"path": e.path, "reason": e.error} for e in entries if e.error is not None]
    rows = []
    for e in entries:
        if e.error is not None:
            continue
        rel = Path(e.path).relative_to(root).as_posix()
        row = {"path": e.path if absolute else os.path.relpath(e.path, out.parent),
               "duration": round(e.duration, 6), "sample_rate": e.sample_rate,
               "channels": e.channels, "frames": e.frames}
        if labels and "/" in rel:
            row["label"] = rel.split("/")[0]
        rows.append(row)
    if not rows:
        raise ManifestError(f"no usable audio files under '{root}' ({len(bad)} bad: "
                            f"{bad[:3]})")
    return write_manifest(rows, out), len(rows), bad
