"""``core.captioned``: audio files with captions listed in a CSV or JSONL file.

CSV: a header row with (at least) ``path`` and ``text`` columns; JSONL: one object per line
with those keys (the column names are parameters). Paths are relative to the list file's
folder unless absolute. Items are audio crops (:mod:`audio_core.data.base`) plus ``text``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

from audio_core.data.base import DatasetError
from audio_core.data.folders import _IndexedFolder
from audio_core.data.index import AUDIO_EXTENSIONS
from audio_core.errors import shown

__all__ = ["CaptionedDataset", "read_captions"]


def read_captions(path: Path, path_column: str = "path",
                  text_column: str = "text") -> list[tuple[str, str]]:
    """``[(audio path as written, caption)]`` of a CSV or JSONL caption list."""
    if not path.is_file():
        raise DatasetError(f"caption file '{path}' does not exist")
    rows: list[dict] = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: not a JSON object ({exc})") from exc
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{n}: expected a JSON object, got {shown(row)}")
            rows.append(row)
    elif path.suffix.lower() in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv"
                                       else ","))
    else:
        raise DatasetError(f"caption file '{path}' must be .csv, .tsv or .jsonl")
    out = []
    first_entry: dict[str, int] = {}
    for n, row in enumerate(rows, 1):
        missing = [c for c in (path_column, text_column) if not row.get(c)]
        if missing:
            raise DatasetError(f"{path}: entry {n} has no '{missing[0]}' (columns: "
                               f"{sorted(row)})")
        audio = str(row[path_column])
        key = os.path.normpath(os.path.join(path.parent, audio))  # how the dataset finds it
        if key in first_entry:  # one caption per file: which one to keep is a guess
            raise DatasetError(f"{path}: entries {first_entry[key]} and {n} caption the same "
                               f"audio file ('{path_column}'); give each file one row (join "
                               "the captions, or copy the file)")
        first_entry[key] = n
        out.append((audio, str(row[text_column])))
    if not out:
        raise DatasetError(f"caption file '{path}' lists no entries")
    return out


class CaptionedDataset(_IndexedFolder):
    """Audio files named by ``captions`` (CSV/TSV/JSONL) with their ``text``; options as in
    :class:`~audio_core.data.folders.FolderDataset`."""

    def __init__(self, captions: str | os.PathLike, *, path_column: str = "path",
                 text_column: str = "text", extensions: Sequence[str] = AUDIO_EXTENSIONS,
                 verify: bool = True, min_seconds: float = 0.0, random_crop: bool = True,
                 cache: bool = True, sample_rate: int, channels: int | None = 1,
                 segment_seconds: float | None = 1.0, seed: int = 0) -> None:
        listing = Path(captions).expanduser()
        rows = read_captions(listing, path_column, text_column)
        base = listing.parent
        paths = [Path(p) if Path(p).is_absolute() else base / p for p, _ in rows]
        self.texts = {os.path.abspath(p): text for p, (_, text) in zip(paths, rows, strict=True)}
        self._index(paths, None, listing, extensions=extensions, verify=verify,
                    min_seconds=min_seconds, cache=cache,
                    expected="the audio files the caption list names",
                    sample_rate=sample_rate, channels=channels, segment_seconds=segment_seconds,
                    seed=seed, random_crop=random_crop)

    def _item(self, i, rng) -> dict:
        item = super()._item(i, rng)
        item["text"] = self.texts.get(os.path.abspath(self.files[i].path), "")
        return item
