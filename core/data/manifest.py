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
from operator import methodcaller
from pathlib import Path
from typing import Any

import numpy as np

from audio_core.data.base import AudioFileDataset, DatasetError
from audio_core.data.index import FileEntry
from audio_core.errors import shown

__all__ = ["Manifest", "ManifestDataset", "ManifestError", "read_manifest", "write_manifest"]

_CHUNK_BYTES = 8 << 20  # manifest text parsed at a time (bounds transient dicts)


class ManifestError(DatasetError):
    """A manifest is missing or a row is malformed (the message names file:line and field)."""



class Strings(Sequence[str]):
    """Many strings in one UTF-8 blob plus an end-offsets array: ``strings[i] -> str``."""

    def __init__(self, strings: Sequence[str]) -> None:
        joined = "".join(strings)
        if joined.isascii():  # one byte per character: string lengths are byte lengths
            self._blob, sizes = joined.encode("ascii"), map(len, strings)
        else:
            parts = [s.encode("utf-8") for s in strings]
            self._blob, sizes = b"".join(parts), map(len, parts)
        self._ends = np.cumsum(np.fromiter(sizes, np.int64, len(strings)))

    @classmethod
    def concat(cls, pieces: Sequence[Strings]) -> Strings:
        out = cls([])
        out._blob = b"".join(p._blob for p in pieces)
        shifts = np.cumsum([0] + [len(p._blob) for p in pieces[:-1]], dtype=np.int64)
        out._ends = np.concatenate([np.zeros(0, np.int64)] + [
            p._ends + s for p, s in zip(pieces, shifts, strict=True)])
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


_NUMBERS = (("duration", float), ("sample_rate", int), ("frames", int), ("channels", int),
            ("offset", float))


def _check_row(where: Path, line: int, row: object) -> dict:
    """Validate one parsed row; its normalised copy, else :class:`ManifestError` naming
    file:line and field."""
    if not isinstance(row, dict):
        raise _fail(where, line, f"expected a JSON object, got {shown(row)}")
    if not isinstance(row.get("path"), str) or not row["path"]:
        raise _fail(where, line, f"'path' must be a non-empty string, got "
                                 f"{shown(row.get('path'))}")
    out = {"path": row["path"]}
    for name, kind in _NUMBERS:
        value = row.get(name)
        if value is None and name in ("duration", "sample_rate"):
            raise _fail(where, line, f"missing '{name}' (each row needs path, duration in "
                                     "seconds and sample_rate)")
        if value is None:
            continue
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_ok or not np.isfinite(value) or (kind is int and value != int(value)):
            what = "an integer" if kind is int else "a number"
            raise _fail(where, line, f"'{name}' must be {what}, got {shown(value)}")
        if value < 0 or (value == 0 and name != "offset"):
            raise _fail(where, line, f"'{name}' must be positive, got {value!r}")
        out[name] = kind(value)
    out["text"] = "" if row.get("text") is None else row["text"]
    if not isinstance(out["text"], str):
        raise _fail(where, line, f"'text' must be a string, got {shown(row['text'])}")
    label = row.get("label")
    if label is not None and (isinstance(label, bool) or not isinstance(label, int | str)):
        raise _fail(where, line, f"'label' must be a class name or an int, got "
                                 f"{shown(label)}")
    out["label"] = label
    return out


def _parse(where: Path, first: int, lines: list[str]) -> tuple[list, np.ndarray]:
    """Rows of a chunk of lines (one JSON parse when well formed) and their line numbers."""
    try:
        rows = json.loads("[" + ",".join(lines) + "]")
        if len(rows) != len(lines):  # a line with two values: the slow path names it
            raise ValueError
        return rows, np.arange(first, first + len(lines))
    except ValueError:
        numbers, rows = [], []
        for n, text in enumerate(lines, first):
            if text.strip():
                try:
                    rows.append(json.loads(text))
                except ValueError as exc:
                    raise _fail(where, n, f"not a JSON object ({exc})") from exc
                numbers.append(n)
        return rows, np.array(numbers, np.int64)


def _column(rows: list, name: str, default: object, kind: type) -> np.ndarray | None:
    """``name`` of every row as an array, or None when one is not a valid number."""
    arr = np.array([r.get(name, default) for r in rows])
    if arr.dtype.kind not in "if" or not np.isfinite(arr).all():
        return None
    if kind is int and arr.dtype.kind == "f" and not (arr == np.round(arr)).all():
        return None
    if name == "offset" or default is None:
        return arr if ((arr >= 0) if name == "offset" else (arr > 0)).all() else None
    given = sum(map(methodcaller("__contains__", name), rows))  # absent rows hold 0
    return arr if (arr >= 0).all() and np.count_nonzero(arr) == given else None


def _columns(rows: list) -> dict | None:
    """The chunk's columns when every row is valid (the fast path), else None."""
    if not all(type(r) is dict for r in rows):
        return None
    paths = [r.get("path") for r in rows]
    text = [r.get("text", "") for r in rows]
    if not all(type(v) is str and v for v in paths) or not all(type(t) is str for t in text):
        return None
    cols: dict[str, Any] = {"paths": paths, "text": text,
                            "label": [r.get("label") for r in rows]}
    for name, kind in _NUMBERS:
        default = 0 if name in ("frames", "channels", "offset") else None
        cols[name] = _column(rows, name, default, kind)
        if cols[name] is None:
            return None
    if not {type(v) for v in cols["label"]} <= {int, str, type(None)}:
        return None
    return cols


class _Reader:
    """Collects the column arrays of a manifest, chunk by chunk."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.parts: dict[str, list] = {k: [] for k in ("paths", "text", "frames", "rate",
                                                       "ch", "start", "label")}
        self.names: dict[str, int] = {}  # class name -> id in order of appearance
        self.first_line: list[int] = []  # of each class name, by id
        self.kind: tuple[type, int] | None = None  # label type, first line using it

    def add(self, first: int, lines: list[str]) -> None:
        rows, numbers = _parse(self.where, first, lines)
        if not rows:
            return
        cols = _columns(rows)
        if cols is None:  # name the first bad row and field
            rows = [_check_row(self.where, int(n), r) for n, r in zip(numbers, rows,
                                                                       strict=True)]
            cols = _columns(rows)
            if cols is None:
                raise _fail(self.where, first, "a number in this chunk of rows is out of "
                                               "range (beyond 64-bit)")
        rate = cols["sample_rate"].astype(np.int64)
        frames = cols["frames"].astype(np.int64)
        frames = np.where(frames > 0, frames, np.round(cols["duration"] * rate).astype(np.int64))
        if (frames <= 0).any():
            raise _fail(self.where, int(numbers[np.flatnonzero(frames <= 0)[0]]),
                        "'duration' is shorter than one sample")
        p = self.parts
        p["frames"].append(frames)
        p["rate"].append(rate.astype(np.int32))
        p["ch"].append(cols["channels"].astype(np.int16))
        p["start"].append(np.round(cols["offset"] * rate).astype(np.int64))
        p["label"].append(self._labels(cols["label"], numbers))
        p["paths"].append(Strings(cols["paths"]))
        p["text"].append(Strings(cols["text"]))

    def _labels(self, labels: list, numbers: np.ndarray) -> np.ndarray:
        kinds = {type(v) for v in labels} - {type(None)}
        if self.kind is not None:
            kinds.add(self.kind[0])
        if len(kinds) > 1:
            first = self.kind or next((type(v), int(n)) for v, n in zip(labels, numbers,
                                                                         strict=True)
                                      if v is not None)
            n = next(int(n) for v, n in zip(labels, numbers, strict=True)
                     if v is not None and type(v) is not first[0])
            raise _fail(self.where, n, f"'label' mixes class names and ints (line {first[1]} "
                                       f"uses a {first[0].__name__}); use one kind")
        if kinds and self.kind is None:
            self.kind = next((type(v), int(n)) for v, n in zip(labels, numbers, strict=True)
                             if v is not None)
        if kinds == {str}:
            names, known = self.names, len(self.names)
            ids = np.array([-1 if v is None else names.setdefault(v, len(names))
                            for v in labels], np.int64)
            found, first = np.unique(ids, return_index=True)
            self.first_line += [int(numbers[k]) for i, k in zip(found, first, strict=True)
                                if i >= known]
            return ids
        return np.array([-1 if v is None else v for v in labels], np.int64)

    def manifest(self, classes: Sequence[str] | None = None) -> Manifest:
        p, where = self.parts, self.where
        if not p["paths"]:
            raise ManifestError(f"manifest '{where}' lists no entries")
        label = np.concatenate(p["label"])
        classes = list(classes) if classes is not None else sorted(self.names)
        if self.names:  # ids in order of appearance -> index of the class name
            lookup = {c: i for i, c in enumerate(classes)}
            for name, i in self.names.items():
                if name not in lookup:
                    raise _fail(where, self.first_line[i], f"'label' {name!r} is not one of "
                                                           f"the classes {classes}")
            remap = np.array([lookup[name] for name in self.names], np.int64)
            label = np.where(label >= 0, remap[np.maximum(label, 0)], -1)
        return Manifest(str(where), str(where.parent.resolve()), Strings.concat(p["paths"]),
                        Strings.concat(p["text"]), np.concatenate(p["frames"]),
                        np.concatenate(p["rate"]), np.concatenate(p["ch"]),
                        np.concatenate(p["start"]), label.astype(np.int32), classes)


def read_manifest(path: str | os.PathLike, classes: Sequence[str] | None = None) -> Manifest:
    """Read a ``.jsonl`` / ``.jsonl.gz`` manifest into columns (see :class:`Manifest`).

    ``classes`` fixes the class names string labels index (default: the sorted names found);
    a label outside it is an error."""
    where = Path(path).expanduser()
    if not where.is_file():
        raise ManifestError(f"manifest '{where}' does not exist (expected a .jsonl or "
                            ".jsonl.gz file, one JSON object per line)")
    reader, first = _Reader(where), 1
    try:
        with _open_text(where) as f:
            while lines := f.readlines(_CHUNK_BYTES):
                reader.add(first, lines)
                first += len(lines)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ManifestError(f"manifest '{where}' cannot be read ({exc})") from exc
    return reader.manifest(classes)


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

    ``classes`` fixes the class list (give a validation split the training split's
    classes); rows shorter than ``min_seconds`` are left out; other options as in
    :class:`~audio_core.data.folders.FolderDataset` (no ``verify``: files are not opened
    before a crop reads them).
    """

    def __init__(self, path: str | os.PathLike, *, classes: Sequence[str] | None = None,
                 min_seconds: float = 0.0, random_crop: bool = True, sample_rate: int,
                 channels: int | None = 1, segment_seconds: float | None = 1.0,
                 seed: int = 0) -> None:
        manifest = read_manifest(path, classes)
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
