"""Token files: BSQ codes bit-packed with a small header (format in the plugin README).

    write_tokens("x.bsqt", codes, header)      # codes (k, tokens) int64 of one clip
    tokens = read_tokens("x.bsqt")             # TokenFile(header, codes)

Layout (little-endian)::

    magic        4 bytes   b"BSQT"
    version      uint16    FORMAT_VERSION
    header_size  uint16    bytes of the JSON header that follows
    header       JSON      utf-8: bits, bits_per_code, tokens, freq_patches, sample_rate,
                           frame_rate, frames, samples, fingerprint
    payload      bytes     tokens * bits bits, token after token, dimension 0 first,
                           little-endian bit order (numpy.packbits(bitorder="little"));
                           zero-padded to a whole byte
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from torch import Tensor, nn

from audio_plugin_bsq.codes import bits_to_codes, codes_to_bits, num_codes

MAGIC = b"BSQT"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<4sHH")


class TokenFileError(ValueError):
    """A token file is malformed, of another format version, or from another model."""


@dataclass(frozen=True)
class TokenHeader:
    """What a token file says about its codes.

    ``frame_rate`` is time steps per second, each of ``freq_patches`` tokens; ``frames`` and
    ``samples`` are the mel frames and waveform samples the tokens were made from (for
    exact-length decoding); ``fingerprint`` identifies the model (:func:`model_fingerprint`).
    """

    bits: int
    bits_per_code: int
    tokens: int
    freq_patches: int
    sample_rate: int
    frame_rate: float
    frames: int | None = None
    samples: int | None = None
    fingerprint: str = ""


@dataclass(frozen=True)
class TokenFile:
    header: TokenHeader
    codes: Tensor  # (k, tokens) int64


def model_fingerprint(model: nn.Module) -> str:
    """16 hex digits of SHA-256 over the model's state dict (names, shapes, dtypes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def header_for(model: nn.Module, codes: Tensor, *, frames: int | None = None,
               samples: int | None = None, fingerprint: str | None = None) -> TokenHeader:
    """The header of ``codes`` ``(k, tokens)`` made by a :class:`BSQTokenizer`."""
    return TokenHeader(bits=model.bits, bits_per_code=model.quantizer.bits_per_code,
                       tokens=int(codes.shape[-1]), freq_patches=model.freq_patches,
                       sample_rate=model.sample_rate, frame_rate=model.frame_rate,
                       frames=frames, samples=samples,
                       fingerprint=fingerprint if fingerprint is not None
                       else model_fingerprint(model))


def pack_codes(codes: Tensor, bits: int, bits_per_code: int) -> bytes:
    """Codes ``(k, tokens)`` -> packed bits, token-major."""
    b = codes_to_bits(rearrange(codes.cpu(), "k n -> n k"), bits, bits_per_code)
    return np.packbits(b.numpy().astype(np.uint8).reshape(-1), bitorder="little").tobytes()


def unpack_codes(payload: bytes, tokens: int, bits: int, bits_per_code: int) -> Tensor:
    """Inverse of :func:`pack_codes`: -> codes ``(k, tokens)`` int64."""
    need = (tokens * bits + 7) // 8
    if len(payload) != need:
        raise TokenFileError(f"payload has {len(payload)} bytes; {tokens} tokens of {bits} bits "
                             f"need {need}")
    flat = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), bitorder="little")
    b = torch.from_numpy(flat[:tokens * bits].reshape(tokens, bits).astype(bool))
    return rearrange(bits_to_codes(b, bits_per_code), "n k -> k n")


def write_tokens(path: str | os.PathLike, codes: Tensor, header: TokenHeader) -> Path:
    """Write one clip's codes ``(k, tokens)`` (or ``(1, k, tokens)``) with ``header``."""
    codes = codes[0] if codes.ndim == 3 and codes.shape[0] == 1 else codes
    k = num_codes(header.bits, header.bits_per_code)
    if codes.ndim != 2 or codes.shape != (k, header.tokens):
        raise ValueError(f"codes of shape {tuple(codes.shape)} do not match the header "
                         f"({k}, {header.tokens})")
    meta = json.dumps(asdict(header), sort_keys=True).encode("utf-8")
    path = Path(path)
    with path.open("wb") as f:
        f.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(meta)))
        f.write(meta)
        f.write(pack_codes(codes, header.bits, header.bits_per_code))
    return path


def read_tokens(path: str | os.PathLike, *, fingerprint: str | None = None) -> TokenFile:
    """Read a token file; with ``fingerprint``, refuse files made by another model."""
    data = Path(path).read_bytes()
    if len(data) < _PREFIX.size:
        raise TokenFileError(f"{path} is too short to be a token file")
    magic, version, size = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise TokenFileError(f"{path} is not a BSQ token file (magic {magic!r})")
    if version != FORMAT_VERSION:
        raise TokenFileError(f"{path} has token format version {version}; this reader "
                             f"supports {FORMAT_VERSION}")
    try:
        header = TokenHeader(**json.loads(data[_PREFIX.size:_PREFIX.size + size]))
    except (ValueError, TypeError) as exc:
        raise TokenFileError(f"{path} has a malformed header: {exc}") from exc
    if fingerprint is not None and header.fingerprint != fingerprint:
        raise TokenFileError(f"{path} was made by model {header.fingerprint}, not {fingerprint}")
    codes = unpack_codes(data[_PREFIX.size + size:], header.tokens, header.bits,
                         header.bits_per_code)
    return TokenFile(header, codes)
