"""Token files: a codec's discrete codes, bit-packed, with a JSON header (docs/tokens.md).

Layout (all integers little-endian)::

    bytes 0-7     magic b"ACTOKENS"
    bytes 8-9     uint16 format version (1)
    bytes 10-13   uint32 header length H
    H bytes       header: UTF-8 JSON object (see TokenHeader)
    the rest      payload: codes (codebooks, frames) in row-major order (codebook 0's
                  frames first), each code as exactly codebook_bits bits, most significant
                  bit first, packed with numpy.packbits(bitorder="big"); zero bits pad the
                  last byte. ceil(codebooks * frames * codebook_bits / 8) bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from audio_core import __version__
from audio_core.errors import AudioCoreError

MAGIC = b"ACTOKENS"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sHI")  # magic, format version, header length
MAX_BITS = 62  # codes stay non-negative int64


class TokenFileError(AudioCoreError, ValueError):
    """A token file is truncated, corrupt, foreign or from a newer format version."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


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


def write_tokens(path: str | os.PathLike, codes: torch.Tensor | np.ndarray,
                 header: TokenHeader | Mapping[str, Any]) -> TokenHeader:
    """Write codes int ``(codebooks, frames)`` and ``header`` to ``path`` (atomically).

    ``num_codebooks``, ``num_frames`` and ``format_version`` are filled in from the codes;
    every code must lie in ``[0, 2**codebook_bits)``. Returns the header written.
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
    blob = json.dumps(meta, sort_keys=True).encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)))
            f.write(blob)
            f.write(payload)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return header


def read_tokens(path: str | os.PathLike) -> tuple[torch.Tensor, TokenHeader]:
    """Codes int64 ``(codebooks, frames)`` and the header of a token file.

    Raises :class:`TokenFileError` for a missing, foreign, truncated or corrupt file, or one
    written in a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise TokenFileError(path, "no such file")
    data = path.read_bytes()
    if data[:len(MAGIC)] != MAGIC[:len(data)]:
        raise TokenFileError(path, f"not an audio-core token file (starts with "
                                   f"{data[:len(MAGIC)]!r}, expected {MAGIC!r})")
    if len(data) < _PREFIX.size:
        raise TokenFileError(path, f"truncated: {len(data)} bytes, shorter than the "
                                   f"{_PREFIX.size}-byte prefix")
    _, version, size = _PREFIX.unpack_from(data)
    if version > FORMAT_VERSION or version < 1:
        raise TokenFileError(path, f"token format version {version} is not supported by "
                                   f"audio-core {__version__} (reads versions 1 to "
                                   f"{FORMAT_VERSION})")
    end = _PREFIX.size + size
    if len(data) < end:
        raise TokenFileError(path, f"truncated: the header needs {size} bytes, "
                                   f"{len(data) - _PREFIX.size} present")
    try:
        header = TokenHeader.from_dict(json.loads(data[_PREFIX.size:end].decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise TokenFileError(path, f"corrupt header ({type(exc).__name__}: {exc})") from exc
    bits = int(header.codebook_bits)
    if not 1 <= bits <= MAX_BITS or header.num_codebooks < 0 or header.num_frames < 0:
        raise TokenFileError(path, f"corrupt header: codebook_bits={bits}, "
                                   f"num_codebooks={header.num_codebooks}, "
                                   f"num_frames={header.num_frames}")
    payload = data[end:]
    expected = payload_size(header.num_codebooks, header.num_frames, bits)
    if len(payload) != expected:
        what = "truncated" if len(payload) < expected else "corrupt (trailing bytes)"
        raise TokenFileError(path, f"{what}: {header.num_codebooks} x {header.num_frames} "
                                   f"codes of {bits} bits need {expected} payload bytes, "
                                   f"found {len(payload)}")
    crc = header.extra.get("payload_crc32")
    if crc is not None and zlib.crc32(payload) != crc:
        raise TokenFileError(path, "corrupt: the payload does not match its CRC-32")
    count = header.num_codebooks * header.num_frames
    codes = unpack_codes(payload, count, bits).reshape(header.num_codebooks, header.num_frames)
    return torch.from_numpy(codes), header


def model_fingerprint(model: nn.Module) -> str:
    """A stable 16-hex-digit identity of a model: SHA-256 over its class, the component
    config it was built from (``model.config``: encoder/quantizer/decoder refs, sample rate,
    channels; when present) and every state-dict entry's name, shape, dtype and bytes."""
    digest = hashlib.sha256(b"audio-core model fingerprint v1\n")
    arch: dict[str, Any] = {"class": f"{type(model).__module__}.{type(model).__qualname__}"}
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "model"):
        arch.update({key: _ref(getattr(cfg.model, key, None))
                     for key in ("encoder", "quantizer", "decoder")})
        arch.update(sample_rate=cfg.data.sample_rate, channels=cfg.data.channels)
    digest.update(json.dumps(arch, sort_keys=True, default=str).encode("utf-8"))
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"\n{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        digest.update(t.view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def _ref(ref: Any) -> Any:
    if ref is None:
        return None
    return {"name": ref.name, "params": _plain(ref.params)}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
