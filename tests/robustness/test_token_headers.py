"""Token files with corrupt or forged headers: every field is type- and range-checked,
checked against the others and bounded by the file size, and the header is checksummed,
so none of them decodes silently wrong or allocates a huge array."""

from __future__ import annotations

import json
import struct
import zlib

import pytest
import torch

from audio_core.inference.tokens import (
    MAGIC,
    TokenFileError,
    TokenHeader,
    pack_codes,
    payload_size,
    read_tokens,
    write_tokens,
)

RATE, HOP, BITS = 8000, 16, 4


def good_meta(frames: int = 5, codebooks: int = 2, **changes) -> dict:
    meta = {"model_fingerprint": "0123456789abcdef", "sample_rate": RATE,
            "frame_rate": RATE / HOP, "hop_length": HOP, "codebook_bits": BITS,
            "channels": 1, "length": frames * HOP - 3, "num_codebooks": codebooks,
            "num_frames": frames, "format_version": 2, "audio_core_version": "0.1.0",
            "extra": {}}
    meta.update(changes)
    return meta


def forge(path, meta, payload: bytes | None = None, version: int = 2) -> None:
    """A token file with header ``meta`` written as-is (a valid header CRC for version 2;
    the payload CRC, if the header has none, is not checked)."""
    if payload is None:
        c, f = meta.get("num_codebooks", 1), meta.get("num_frames", 1)
        n = c * f if isinstance(c, int) and isinstance(f, int) and c * f < 10**6 else 0
        payload = pack_codes(torch.zeros(n, dtype=torch.int64).numpy(), BITS)
    blob = json.dumps(meta).encode()
    head = struct.pack("<8sHI", MAGIC, version, len(blob)) + blob
    crc = struct.pack("<I", zlib.crc32(head)) if version >= 2 else b""
    path.write_bytes(head + crc + payload)


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "ok.tokens"
    codes = torch.arange(10).reshape(2, 5) % 16
    write_tokens(path, codes, TokenHeader(**{k: v for k, v in good_meta().items()
                                             if k not in ("num_codebooks", "num_frames")}))
    return path, codes


def test_a_bit_flip_in_the_header_length_is_caught(written, tmp_path):
    path, _ = written
    data = bytearray(path.read_bytes())
    start = data.index(b'"length": ') + len(b'"length": ')
    data[start] ^= 0x01  # 77 -> 67 (a digit's low bit): still valid JSON, still a number
    (tmp_path / "flip.tokens").write_bytes(bytes(data))
    with pytest.raises(TokenFileError, match="corrupt header: it does not match its CRC-32"):
        read_tokens(tmp_path / "flip.tokens")


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(("changes", "match"), [
    ({"length": 5 * HOP + 40}, "length .* needs .* frames, but num_frames is 5"),
    ({"length": 10**15}, "length"),
    ({"length": 0}, "'length' = 0 is out of range"),
    ({"length": -4}, "'length' = -4 is out of range"),
    ({"num_codebooks": 0, "num_frames": 10**9, "length": 10**9 * HOP},
     "'num_codebooks' = 0 is out of range"),
    ({"num_frames": 10**9, "length": 10**9 * HOP}, "need .* payload bytes"),
    ({"sample_rate": "16000"}, "'sample_rate' must be an integer, got str"),
    ({"channels": True}, "'channels' must be an integer, got bool"),
    ({"channels": 0}, "'channels' = 0 is out of range"),
    ({"codebook_bits": 99}, "'codebook_bits' = 99 is out of range"),
    ({"num_frames": 2.5}, "'num_frames' must be an integer, got float"),
    ({"frame_rate": "fast"}, "'frame_rate' must be a positive finite number"),
    ({"frame_rate": float("nan")}, "'frame_rate' must be a positive finite number"),
    ({"frame_rate": 123.0}, "frame_rate 123.0 but sample_rate / hop_length"),
    ({"hop_length": 0}, "'hop_length' = 0 is out of range"),
    ({"model_fingerprint": 12}, "'model_fingerprint' must be a non-empty string"),
    ({"extra": [1, 2]}, "'extra' must be an object"),
    ({"extra": {"payload_crc32": "x"}}, "payload_crc32"),
    ({"sample_rate": None}, "'sample_rate' must be an integer"),
])
def test_forged_header_fields_are_refused(tmp_path, version, changes, match):
    meta = good_meta(**changes)
    if version == 1:
        meta["format_version"] = 1
    path = tmp_path / "forged.tokens"
    forge(path, meta, version=version)
    with pytest.raises(TokenFileError, match=match):
        read_tokens(path)


@pytest.mark.parametrize(("meta", "match"), [
    ([1, 2, 3], "must be a JSON object"),
    ("text", "must be a JSON object"),
    ({"sample_rate": RATE}, "missing"),
])
def test_headers_that_are_not_headers(tmp_path, meta, match):
    path = tmp_path / "x.tokens"
    forge(path, meta, payload=b"")
    with pytest.raises(TokenFileError, match=match):
        read_tokens(path)


def test_version_2_needs_hop_length_and_the_prefix_version(tmp_path):
    meta = good_meta()
    del meta["hop_length"]
    forge(tmp_path / "a.tokens", meta)
    with pytest.raises(TokenFileError, match="'hop_length' missing"):
        read_tokens(tmp_path / "a.tokens")
    forge(tmp_path / "b.tokens", good_meta(format_version=1))
    with pytest.raises(TokenFileError, match="prefix says 2"):
        read_tokens(tmp_path / "b.tokens")


def test_a_version_1_file_still_reads(tmp_path):
    meta = good_meta(format_version=1)
    del meta["hop_length"]  # version 1 allowed it to be absent: derived from the rates
    codes = torch.arange(10).reshape(2, 5) % 16
    payload = pack_codes(codes.reshape(-1).numpy(), BITS)
    meta["extra"] = {"payload_crc32": zlib.crc32(payload)}
    forge(tmp_path / "v1.tokens", meta, payload, version=1)
    back, header = read_tokens(tmp_path / "v1.tokens")
    assert torch.equal(back, codes) and header.format_version == 1


def test_a_huge_header_length_is_not_read(tmp_path):
    path = tmp_path / "big.tokens"
    path.write_bytes(struct.pack("<8sHI", MAGIC, 2, 2**32 - 1) + b"{}")
    with pytest.raises(TokenFileError, match="truncated: the header needs 4294967295 bytes"):
        read_tokens(path)


def test_a_large_foreign_file_is_rejected_from_its_first_bytes(tmp_path):
    path = tmp_path / "song.tokens"
    path.write_bytes(b"RIFF" + bytes(2_000_000))
    with pytest.raises(TokenFileError, match="not an audio-core token file"):
        read_tokens(path)


def test_a_folder_is_not_a_token_file(tmp_path):
    with pytest.raises(TokenFileError, match="not a file"):
        read_tokens(tmp_path)


def test_the_writer_refuses_what_the_reader_would(tmp_path):
    header = TokenHeader(**{k: v for k, v in good_meta(length=500).items()
                            if k not in ("num_codebooks", "num_frames")})
    with pytest.raises(ValueError, match="num_frames is 5"):
        write_tokens(tmp_path / "x.tokens", torch.zeros(2, 5, dtype=torch.int64), header)
    assert not (tmp_path / "x.tokens").exists()


def test_the_file_size_bounds_the_codes():
    # the largest header a 1 kB payload can carry: codebooks x frames x bits <= 8192 bits
    assert payload_size(1, 8192, 1) == 1024
