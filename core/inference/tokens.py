"""Token files: a codec's discrete codes, bit-packed, with a JSON header (docs/tokens.md).

Layout of format version 2 (all integers little-endian)::

    bytes 0-7     magic b"ACTOKENS"
    bytes 8-9     uint16 format version (2)
    bytes 10-13   uint32 header length H
    H bytes       header: UTF-8 JSON object (see TokenHeader)
    4 bytes       uint32 CRC-32 of everything before it (magic, version, H and the header)
    the rest      payload: codes (codebooks, frames) in row-major order (codebook 0's
                  frames first), each code as exactly codebook_bits bits, most significant
                  bit first, packed with numpy.packbits(bitorder="big"); zero bits pad the
                  last byte. ceil(codebooks * frames * codebook_bits / 8) bytes, whose CRC-32
                  is the header's extra.payload_crc32.

Version 1 files (no header CRC) are still read. Every header field is checked for type and
range and against the others and the file size (:func:`validate_header`) before anything is
allocated, so a corrupt or forged header is a :class:`TokenFileError`, never a wrong decode
or a huge allocation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audio_core.errors import AudioCoreError, shown
from audio_core.version import __version__

MAGIC = b"ACTOKENS"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_PREFIX = struct.Struct("<8sHI")  # magic, format version, header length
_CRC = struct.Struct("<I")  # version 2: CRC-32 of prefix + header
MAX_BITS = 62  # codes stay non-negative int64
MAX_HEADER_BYTES = 1 << 20
MAX_SAMPLE_RATE = 10_000_000
MAX_CHANNELS = 1024


class TokenFileError(AudioCoreError, ValueError):
    """A token file is truncated, corrupt, foreign or from a newer format version."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


class TokenHeaderError(AudioCoreError, ValueError):
    """A token header field has the wrong type, is out of range or contradicts another."""


@dataclasses.dataclass(frozen=True)
class TokenHeader:
    """What a token file says about its codes.

    ``model_fingerprint`` (:func:`model_fingerprint` of the encoding model),
    ``sample_rate`` (Hz), ``frame_rate`` (code frames per second), ``hop_length`` (samples
    per frame), ``codebook_bits`` (bits per code), ``channels`` and ``length`` (audio
    channels and original length in samples, at ``sample_rate``). ``num_codebooks`` and
    ``num_frames`` are set from the codes by :func:`write_tokens`. ``extra`` holds any
    other JSON-serialisable facts (and unknown keys of files from later versions).
    """

    model_fingerprint: str
    sample_rate: int
    frame_rate: float
    codebook_bits: int
    channels: int
    length: int
    hop_length: int | None = None
    num_codebooks: int = 0
    num_frames: int = 0
    format_version: int = FORMAT_VERSION
    audio_core_version: str = __version__
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def kbps(self) -> float:
        """Bitrate of the stored codes in kilobits per second."""
        return self.num_codebooks * self.codebook_bits * self.frame_rate / 1000

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenHeader:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names and k != "extra"}
        extra = {**dict(data.get("extra") or {}),
                 **{k: v for k, v in data.items() if k not in names}}
        return cls(**known, extra=extra)


# -- header validation -------------------------------------------------------------------
_REQUIRED = ("model_fingerprint", "sample_rate", "frame_rate", "codebook_bits", "channels",
             "length", "num_codebooks", "num_frames")


def _int(meta: Mapping[str, Any], key: str, low: int, high: int | None = None) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TokenHeaderError(f"header field '{key}' must be an integer, got "
                               f"{type(value).__name__} ({shown(value)})")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise TokenHeaderError(f"header field '{key}' = {value} is out of range (must be "
                               f"{bound})")
    return value


def validate_header(meta: Any, version: int = FORMAT_VERSION) -> TokenHeader:
    """A :class:`TokenHeader` from a decoded JSON header, checked field by field.

    Types (integers are JSON integers, not booleans or strings; ``frame_rate`` a finite
    number), ranges, ``frame_rate == sample_rate / hop_length``, ``num_frames ==
    ceil(length / hop_length)``. Raises :class:`TokenHeaderError` naming the field.
    """
    if not isinstance(meta, Mapping):
        raise TokenHeaderError(f"the header must be a JSON object, got {type(meta).__name__}")
    absent = [key for key in _REQUIRED if key not in meta]
    if absent:
        raise TokenHeaderError(f"header field(s) {', '.join(absent)} missing")
    fingerprint = meta["model_fingerprint"]
    if not isinstance(fingerprint, str) or not 0 < len(fingerprint) <= 256:
        raise TokenHeaderError(f"header field 'model_fingerprint' must be a non-empty string, "
                               f"got {fingerprint!r:.40}")
    rate = _int(meta, "sample_rate", 1, MAX_SAMPLE_RATE)
    _int(meta, "channels", 1, MAX_CHANNELS)
    _int(meta, "codebook_bits", 1, MAX_BITS)
    _int(meta, "num_codebooks", 1)
    frames = _int(meta, "num_frames", 1)
    length = _int(meta, "length", 1)
    frame_rate = meta["frame_rate"]
    if isinstance(frame_rate, bool) or not isinstance(frame_rate, int | float) \
            or not math.isfinite(frame_rate) or frame_rate <= 0:
        raise TokenHeaderError(f"header field 'frame_rate' must be a positive finite number, "
                               f"got {frame_rate!r:.40}")
    if meta.get("hop_length") is None and version >= 2:
        raise TokenHeaderError("header field 'hop_length' missing")
    hop = (_int(meta, "hop_length", 1, rate * 1000) if meta.get("hop_length") is not None
           else rate / frame_rate)
    if not math.isclose(frame_rate, rate / hop, rel_tol=1e-6):
        raise TokenHeaderError(f"header fields disagree: frame_rate {frame_rate} but "
                               f"sample_rate / hop_length = {rate / hop:g}")
    if not (frames - 1) * hop < length <= frames * hop + 1e-6:
        raise TokenHeaderError(
            f"header fields disagree: length {length} samples needs ceil({length} / "
            f"{hop:g}) = {math.ceil(length / hop - 1e-9)} frames, but num_frames is {frames}")
    if "format_version" in meta and meta["format_version"] != version:
        raise TokenHeaderError(f"header field 'format_version' = {meta['format_version']!r} "
                               f"but the file prefix says {version}")
    if not isinstance(meta.get("audio_core_version", ""), str):
        raise TokenHeaderError("header field 'audio_core_version' must be a string")
    extra = meta.get("extra", {})
    if not isinstance(extra, Mapping):
        raise TokenHeaderError(f"header field 'extra' must be an object, got "
                               f"{type(extra).__name__}")
    crc = extra.get("payload_crc32")
    if crc is not None and (isinstance(crc, bool) or not isinstance(crc, int)
                            or not 0 <= crc < 2**32):
        raise TokenHeaderError(f"header field 'extra.payload_crc32' must be a 32-bit unsigned "
                               f"integer, got {crc!r:.40}")
    try:
        return TokenHeader.from_dict(meta)
    except TypeError as exc:
        raise TokenHeaderError(f"unexpected header fields ({exc})") from exc


# -- payload -------------------------------------------------------------------------------
def pack_codes(codes: np.ndarray, bits: int) -> bytes:
    """Flat non-negative integer codes ``(n,)`` -> ``ceil(n * bits / 8)`` bytes (MSB first)."""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bitmat = (codes.astype(np.uint64)[:, None] >> shifts) & np.uint64(1)
    return np.packbits(bitmat.astype(np.uint8).reshape(-1), bitorder="big").tobytes()


def unpack_codes(payload: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: ``count`` codes int64 ``(count,)``."""
    flat = np.unpackbits(np.frombuffer(payload, np.uint8), count=count * bits, bitorder="big")
    weights = np.left_shift(np.int64(1), np.arange(bits - 1, -1, -1, dtype=np.int64))
    return flat.reshape(count, bits).astype(np.int64) @ weights


def payload_size(num_codebooks: int, num_frames: int, bits: int) -> int:
    return -(-num_codebooks * num_frames * bits // 8)


# -- files ---------------------------------------------------------------------------------
def write_tokens(path: str | os.PathLike, codes: torch.Tensor | np.ndarray,
                 header: TokenHeader | Mapping[str, Any]) -> TokenHeader:
    """Write codes int ``(codebooks, frames)`` and ``header`` to ``path`` (atomically).

    ``num_codebooks``, ``num_frames`` and ``format_version`` are filled in from the codes;
    every code must lie in ``[0, 2**codebook_bits)`` and the header must pass
    :func:`validate_header` (``hop_length`` set, ``num_frames == ceil(length /
    hop_length)``). Returns the header written.
    """
    if not isinstance(header, TokenHeader):
        header = TokenHeader.from_dict(header)
    array = codes.detach().cpu().numpy() if isinstance(codes, torch.Tensor) else np.asarray(codes)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"codes must be integers of shape (codebooks, frames), got "
                         f"{array.dtype} {tuple(array.shape)}")
    bits = int(header.codebook_bits)
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"codebook_bits must be in [1, {MAX_BITS}], got {bits}")
    if array.size and (array.min() < 0 or array.max() >= 2**bits):
        raise ValueError(f"codes must lie in [0, {2**bits}) for {bits} bits per code; got "
                         f"[{array.min()}, {array.max()}]")
    payload = pack_codes(array.reshape(-1), bits)
    header = dataclasses.replace(header, num_codebooks=int(array.shape[0]),
                                 num_frames=int(array.shape[1]), format_version=FORMAT_VERSION)
    meta = header.to_dict()
    meta["extra"] = {**meta["extra"], "payload_crc32": zlib.crc32(payload)}
    validate_header(json.loads(json.dumps(meta)), FORMAT_VERSION)
    blob = json.dumps(meta, sort_keys=True).encode("utf-8")
    head = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)) + blob
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(head)
            f.write(_CRC.pack(zlib.crc32(head)))
            f.write(payload)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return header


def read_tokens(path: str | os.PathLike) -> tuple[torch.Tensor, TokenHeader]:
    """Codes int64 ``(codebooks, frames)`` and the header of a token file.

    Raises :class:`TokenFileError` for a missing, foreign, truncated or corrupt file (the
    header's checksum and every field are checked before the payload is read), or one
    written in a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise TokenFileError(path, "no such file" if not path.exists() else "not a file")
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(_PREFIX.size)
        if prefix[:len(MAGIC)] != MAGIC[:len(prefix)]:
            raise TokenFileError(path, f"not an audio-core token file (starts with "
                                       f"{prefix[:len(MAGIC)]!r}, expected {MAGIC!r})")
        if len(prefix) < _PREFIX.size:
            raise TokenFileError(path, f"truncated: {len(prefix)} bytes, shorter than the "
                                       f"{_PREFIX.size}-byte prefix")
        _, version, header_size = _PREFIX.unpack(prefix)
        if version not in READABLE_VERSIONS:
            raise TokenFileError(path, f"token format version {version} is not supported by "
                                       f"audio-core {__version__} (reads versions "
                                       f"{READABLE_VERSIONS[0]} to {READABLE_VERSIONS[-1]})")
        crc_size = _CRC.size if version >= 2 else 0
        if header_size > MAX_HEADER_BYTES or _PREFIX.size + header_size + crc_size > size:
            raise TokenFileError(path, f"truncated: the header needs {header_size} bytes, "
                                       f"{max(0, size - _PREFIX.size - crc_size)} present")
        blob = f.read(header_size)
        if crc_size:
            (stored,) = _CRC.unpack(f.read(crc_size))
            if zlib.crc32(prefix + blob) != stored:
                raise TokenFileError(path, "corrupt header: it does not match its CRC-32")
        try:
            meta = json.loads(blob.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TokenFileError(path, f"corrupt header ({type(exc).__name__}: {exc})") from exc
        payload_bytes = size - _PREFIX.size - header_size - crc_size
        try:
            header = validate_header(meta, version)
        except TokenHeaderError as exc:
            raise TokenFileError(path, f"corrupt header: {exc}") from exc
        bits, rows, frames = header.codebook_bits, header.num_codebooks, header.num_frames
        expected = payload_size(rows, frames, bits)
        if payload_bytes != expected:
            what = "truncated" if payload_bytes < expected else "corrupt (trailing bytes)"
            raise TokenFileError(path, f"{what}: {rows} x {frames} codes of {bits} bits "
                                       f"need {expected} payload bytes, found {payload_bytes}")
        payload = f.read(payload_bytes)
    if len(payload) != payload_bytes:
        raise TokenFileError(path, "truncated: the file shrank while it was read")
    crc = header.extra.get("payload_crc32")
    if crc is not None and zlib.crc32(payload) != crc:
        raise TokenFileError(path, "corrupt: the payload does not match its CRC-32")
    count = header.num_codebooks * header.num_frames
    codes = unpack_codes(payload, count, header.codebook_bits)
    return torch.from_numpy(codes.reshape(header.num_codebooks, header.num_frames)), header
