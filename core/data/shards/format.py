"""The shard layout written by ``audio-core data pack`` and read by ``core.shards``.

A packed dataset is a folder (or the same files under an fsspec URL)::

    OUT/index.json                 the dataset: shards, sample counts, seconds, checksums
    OUT/shard-000000.tar           WebDataset layout: KEY.flac (or .wav, or KEY.npy for
                                   latents) + KEY.json per sample, in key order
    OUT/shard-000000.idx.json      where each member's bytes are in the tar, and its
                                   metadata (frames, rate, channels, label, text)

``index.json``::

    {"format": "audio-core shards", "version": 1, "content": "audio" | "latents",
     "samples": N, "seconds": S, "classes": [...], "sample_rate": 16000 | null,
     "shards": [{"name": "shard-000000.tar", "samples": n, "seconds": s, "bytes": b,
                 "sha256": "...", "bucket": [lo_s, hi_s] | null}, ...],
     "model": {...}   # latents only: the source model (fingerprint, frame_rate, latent_dim)
    }

Each ``KEY.json`` member holds the sample's metadata (``key``, ``source``, ``duration``,
``frames``, ``sample_rate``, ``channels``, ``label``, ``class``, ``text``), so any
WebDataset reader sees everything; the ``.idx.json`` beside each shard lets ``core.shards``
read one sample with one byte-range request, without scanning the tar.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from audio_core.errors import AudioCoreError

__all__ = [
    "FORMAT",
    "INDEX_FILE",
    "ShardFormatError",
    "ShardMembers",
    "ShardRecord",
    "ShardTarWriter",
    "index_name",
    "parse_index",
    "shard_name",
]

FORMAT = "audio-core shards"
VERSION = 1
INDEX_FILE = "index.json"
IDX_SUFFIX = ".idx.json"
#: Member extension of each content kind's payload.
PAYLOAD_EXTENSIONS = {"audio": (".flac", ".wav"), "latents": (".npy",)}


class ShardFormatError(AudioCoreError, ValueError):
    """An ``index.json`` or ``.idx.json`` is missing, malformed or inconsistent."""


def shard_name(number: int, prefix: str = "shard") -> str:
    return f"{prefix}-{number:06d}.tar"


def index_name(shard: str) -> str:
    """``shard-000000.tar`` -> ``shard-000000.idx.json`` (the member index beside it)."""
    return (shard[:-4] if shard.endswith(".tar") else shard) + IDX_SUFFIX


@attrs.frozen
class ShardRecord:
    """One shard as ``index.json`` lists it."""

    name: str
    samples: int
    seconds: float
    bytes: int
    sha256: str
    bucket: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self)
        out["bucket"] = list(self.bucket) if self.bucket is not None else None
        return out


@attrs.define
class ShardMembers:
    """The member index of one shard: columns of one value per sample, in tar order.

    ``offset``/``size`` locate the payload member's data (audio file or ``.npy``) in the
    tar; ``frames`` are payload frames at ``sample_rate`` (latents: latent frames).
    ``pcm_offset``/``pcm_dtype``: for WAV payloads of 16-bit or float32 PCM, where the
    interleaved samples start in the tar and their numpy dtype (``"<i2"``, ``"<f4"``), so
    a crop is one read of exactly its bytes, decoded without a codec (``-1``/``""`` for
    other payloads; optional in the JSON).
    """

    keys: list[str]
    ext: list[str]
    offset: list[int]
    size: list[int]
    frames: list[int]
    sample_rate: list[int]
    channels: list[int]
    label: list[int]
    text: list[str]
    pcm_offset: list[int] = attrs.field(factory=list)
    pcm_dtype: list[str] = attrs.field(factory=list)

    COLUMNS: ClassVar[tuple[str, ...]] = ("keys", "ext", "offset", "size", "frames",
                                          "sample_rate", "channels", "label", "text")
    OPTIONAL: ClassVar[dict[str, Any]] = {"pcm_offset": -1, "pcm_dtype": ""}

    @classmethod
    def empty(cls) -> ShardMembers:
        return cls(*([] for _ in cls.COLUMNS))

    def __len__(self) -> int:
        return len(self.keys)

    def to_json(self) -> str:
        return json.dumps({c: getattr(self, c) for c in (*self.COLUMNS, *self.OPTIONAL)},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> ShardMembers:
        try:
            data = json.loads(text)
            columns = {c: list(data[c]) for c in cls.COLUMNS}
        except (ValueError, KeyError, TypeError) as exc:
            raise ShardFormatError(f"{where}: not a shard member index ({exc!r}); "
                                   "expected the .idx.json that `audio-core data pack` "
                                   "writes") from exc
        n = len(columns["keys"])
        for column, default in cls.OPTIONAL.items():
            columns[column] = list(data.get(column) or [default] * n)
        if any(len(v) != n for v in columns.values()):
            raise ShardFormatError(f"{where}: member index columns have different lengths")
        return cls(**columns)


def parse_index(data: Any, where: str) -> dict[str, Any]:
    """Check a decoded ``index.json``; returns it with ``shards`` as :class:`ShardRecord`."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ShardFormatError(f"{where}: not an audio-core shard index (expected "
                               f"\"format\": \"{FORMAT}\", written by `audio-core data pack`)")
    if int(data.get("version", 0)) > VERSION:
        raise ShardFormatError(f"{where}: index version {data['version']} is newer than this "
                               f"audio-core reads ({VERSION}); upgrade audio-core")
    shards = data.get("shards")
    if not isinstance(shards, list) or not shards:
        raise ShardFormatError(f"{where}: lists no shards")
    try:
        records = [ShardRecord(name=str(s["name"]), samples=int(s["samples"]),
                               seconds=float(s["seconds"]), bytes=int(s["bytes"]),
                               sha256=str(s["sha256"]),
                               bucket=tuple(s["bucket"]) if s.get("bucket") else None)
                   for s in shards]
    except (KeyError, TypeError, ValueError) as exc:
        raise ShardFormatError(f"{where}: bad shard record ({exc!r}); each needs name, "
                               "samples, seconds, bytes, sha256") from exc
    for r in records:
        if r.samples < 0 or "/" in r.name or r.name.startswith("."):
            raise ShardFormatError(f"{where}: bad shard record {r.to_dict()}")
    content = data.get("content", "audio")
    if content not in PAYLOAD_EXTENSIONS:
        raise ShardFormatError(f"{where}: unknown content '{content}' (expected one of "
                               f"{sorted(PAYLOAD_EXTENSIONS)})")
    return {**data, "content": content, "shards": records}


class ShardTarWriter:
    """Writes one shard: a tar of ``KEY.<ext>`` + ``KEY.json`` members and its member index.

    The tar is reproducible (mtime 0, no owner), written to ``NAME.tmp`` and renamed when
    :meth:`close` succeeds, so a shard on disk is always complete. ``close`` returns the
    :class:`ShardRecord` (with the tar's sha256) for ``index.json``.
    """

    def __init__(self, folder: str | os.PathLike, name: str) -> None:
        self.folder, self.name = Path(folder), name
        self._tmp = self.folder / f".{name}.tmp"
        self._file = open(self._tmp, "wb")  # noqa: SIM115 (closed in close/abort)
        self._hash = hashlib.sha256()
        self._tar = tarfile.open(  # noqa: SIM115 (closed in close/abort)
            fileobj=_HashingWriter(self._file, self._hash), mode="w",  # type: ignore[arg-type]
            format=tarfile.USTAR_FORMAT)
        self.members = ShardMembers.empty()
        self.seconds = 0.0

    @property
    def bytes_written(self) -> int:
        return self._tar.offset

    def __len__(self) -> int:
        return len(self.members)

    def add(self, key: str, payload: bytes, ext: str, meta: Mapping[str, Any]) -> None:
        """Add sample ``key``: ``payload`` (an encoded audio file or ``.npy``) and ``meta``.

        ``meta`` needs ``frames``, ``sample_rate``, ``channels``; ``label`` (default -1),
        ``text`` and ``duration`` are optional. It is stored as ``KEY.json`` too.
        """
        if not key or "/" in key or "." in key:
            raise ShardFormatError(f"bad sample key {key!r}: keys may not be empty or "
                                   "contain '/' or '.' (WebDataset splits names at the "
                                   "first dot)")
        m = self.members
        m.keys.append(key)
        m.ext.append(ext.lstrip("."))
        m.offset.append(self._add_member(f"{key}.{ext.lstrip('.')}", payload))
        m.size.append(len(payload))
        pcm = wav_pcm_layout(payload) if ext.lstrip(".") == "wav" else None
        m.pcm_offset.append(m.offset[-1] + pcm[0] if pcm else -1)
        m.pcm_dtype.append(pcm[1] if pcm else "")
        m.frames.append(int(meta["frames"]))
        m.sample_rate.append(int(meta["sample_rate"]))
        m.channels.append(int(meta["channels"]))
        m.label.append(int(meta.get("label", -1)))
        m.text.append(str(meta.get("text", "")))
        self.seconds += float(meta.get("duration", meta["frames"] / meta["sample_rate"]))
        self._add_member(f"{key}.json", json.dumps({"key": key, **meta}).encode())

    def _add_member(self, name: str, data: bytes) -> int:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        offset = self._tar.offset + len(header)  # the data follows its 512-byte header
        self._tar.addfile(info, io.BytesIO(data))
        return offset

    def close(self, bucket: Sequence[float] | None = None) -> ShardRecord:
        """Finish the tar, write its member index, move both in place; the shard's record."""
        self._tar.close()
        self._file.close()
        size = self._tmp.stat().st_size
        idx = self.folder / index_name(self.name)
        tmp_idx = self.folder / f".{idx.name}.tmp"
        tmp_idx.write_text(self.members.to_json(), encoding="utf-8")
        os.replace(tmp_idx, idx)
        os.replace(self._tmp, self.folder / self.name)
        return ShardRecord(self.name, len(self.members), round(self.seconds, 6), size,
                           self._hash.hexdigest(),
                           (float(bucket[0]), float(bucket[1])) if bucket is not None else None)

    def abort(self) -> None:
        """Drop the unfinished shard (nothing is left on disk)."""
        try:
            self._tar.close()
        finally:
            self._file.close()
            self._tmp.unlink(missing_ok=True)


def wav_pcm_layout(data: bytes) -> tuple[int, str] | None:
    """``(offset of the sample data, numpy dtype)`` of a RIFF/WAVE file holding 16-bit or
    float32 PCM (plain or WAVE_FORMAT_EXTENSIBLE), else None."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, dtype = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt " and size >= 16:
            tag = int.from_bytes(data[body:body + 2], "little")
            bits = int.from_bytes(data[body + 14:body + 16], "little")
            if tag == 0xFFFE and size >= 26:  # extensible: the sub-format's first two bytes
                tag = int.from_bytes(data[body + 24:body + 26], "little")
            dtype = {(1, 16): "<i2", (3, 32): "<f4"}.get((tag, bits))
        elif chunk == b"data":
            return (body, dtype) if dtype else None
        pos = body + size + (size & 1)
    return None


class _HashingWriter:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, file: Any, hasher: Any) -> None:
        self._file, self._hasher = file, hasher

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()
