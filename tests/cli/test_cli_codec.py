"""Token files, chunked codec encode/decode, and `audio-core encode|decode|reconstruct` with
--bandwidth/--n-quantizers on a tiny conv + residual-VQ model (core.rvq)."""

from __future__ import annotations

import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from audio_core.cli import main
from audio_core.components.conv import ConvDecoder
from audio_core.components.rvq import ResidualVQ
from audio_core.config import load_config
from audio_core.contracts.models import Codec, CodecSpec
from audio_core.engine.export import save_export
from audio_core.inference.codec import (
    CodecError,
    codec_info,
    decode_audio,
    encode_audio,
    frame_spans,
    select_quantizers,
)
from audio_core.inference.tokens import (
    MAGIC,
    TokenFileError,
    TokenHeader,
    read_tokens,
    write_tokens,
)
from audio_core.models.autoencoder import AudioAutoencoder
from audio_core.models.build import build_model
from audio_core.models.fingerprint import model_fingerprint
from audio_core.models.loading import load
from audio_core.plugins import get_registry

RATE, HOP, CODEBOOKS, BITS = 8000, 4, 3, 4  # 2000 frames/s x 4 bits: 8 kbps per codebook


def header(frames: int = 6, **kw) -> TokenHeader:
    """A valid header for codes of ``frames`` frames (length: frames * HOP - 1 samples)."""
    base = {"model_fingerprint": "0123456789abcdef", "sample_rate": RATE,
            "frame_rate": RATE / HOP, "hop_length": HOP, "codebook_bits": BITS, "channels": 1,
            "length": frames * HOP - 1}
    return TokenHeader(**{**base, **kw})


# -- token files -----------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [*range(1, 17), 31, 32, 33, 48, 62])
def test_token_file_round_trips_exactly(tmp_path, bits):
    rng = np.random.default_rng(bits)
    codebooks, frames = 1 + bits % 3, 2 * bits + 5  # odd frame counts
    codes = torch.from_numpy(rng.integers(0, 2**bits, (codebooks, frames)))
    codes[0, 0], codes[-1, -1] = 2**bits - 1, 0  # extremes
    path = tmp_path / "x.tokens"
    written = write_tokens(path, codes, header(frames, codebook_bits=bits, extra={"note": "hi"}))
    back, head = read_tokens(path)
    assert back.dtype == torch.int64 and torch.equal(back, codes)
    assert head.num_codebooks == codebooks and head.num_frames == frames
    assert head.model_fingerprint == written.model_fingerprint and head.extra["note"] == "hi"
    blob = len(json.dumps(head.to_dict() | {"extra": head.extra}, sort_keys=True).encode())
    # prefix, header, header CRC-32, payload
    assert path.stat().st_size == 14 + blob + 4 + math.ceil(codebooks * frames * bits / 8)


def test_token_header_is_documented_json(tmp_path):
    path = tmp_path / "x.tokens"
    write_tokens(path, torch.zeros(2, 3, dtype=torch.int64), header(3))
    data = path.read_bytes()
    magic, version, size = struct.unpack_from("<8sHI", data)
    assert (magic, version) == (MAGIC, 2)
    meta = json.loads(data[14:14 + size])
    assert {"format_version", "model_fingerprint", "sample_rate", "frame_rate", "num_codebooks",
            "codebook_bits", "num_frames", "channels", "length", "audio_core_version",
            "hop_length"} <= set(meta)
    (crc,) = struct.unpack_from("<I", data, 14 + size)
    assert crc == zlib.crc32(data[:14 + size])  # the header's checksum
    assert len(data) == 14 + size + 4 + 3  # 6 codes x 4 bits


def test_token_file_errors(tmp_path):
    good = tmp_path / "good.tokens"
    write_tokens(good, torch.arange(12).reshape(2, 6) % 16, header())
    data = good.read_bytes()
    cases = {
        "short.tokens": (data[:-1], "truncated.*payload"),
        "header.tokens": (data[:20], "truncated: the header"),
        "prefix.tokens": (data[:5], "truncated"),
        "foreign.tokens": (b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(40), "not an audio-core token"),
        "trailing.tokens": (data + b"\x00", "trailing bytes"),
        "newer.tokens": (data[:8] + struct.pack("<H", 99) + data[10:], "version 99"),
        "crc.tokens": (data[:-1] + bytes([data[-1] ^ 1]), "CRC-32"),
        "json.tokens": (data[:14] + b"{" * (len(data) - 14), "corrupt header"),
        "header_crc.tokens": (data[:20] + bytes([data[20] ^ 1]) + data[21:], "corrupt header"),
    }
    for name, (blob, match) in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(TokenFileError, match=match):
            read_tokens(tmp_path / name)
    with pytest.raises(TokenFileError, match="no such file"):
        read_tokens(tmp_path / "missing.tokens")
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\)"):
        write_tokens(tmp_path / "bad.tokens", torch.tensor([[16]]), header(1))
    with pytest.raises(ValueError, match="codebooks, frames"):
        write_tokens(tmp_path / "bad.tokens", torch.zeros(1, 2, 3, dtype=torch.int64), header(2))


def test_fingerprint_tracks_weights_and_architecture():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    fp = model_fingerprint(a)
    assert len(fp) == 16 and fp == model_fingerprint(a)
    b = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    b.load_state_dict(a.state_dict())
    assert model_fingerprint(b) == fp
    with torch.no_grad():
        b[1].bias[0] += 1e-6
    assert model_fingerprint(b) != fp
    assert model_fingerprint(a.to(torch.float64)) != fp


# -- chunked encode/decode (Python API) ------------------------------------------------------
class PatchEncoder(nn.Module):
    """Frame-local: each frame sees exactly its own ``hop_length`` samples."""

    def __init__(self, dim: int = 4, hop_length: int = HOP) -> None:
        super().__init__()
        self.hop_length, self.channels = hop_length, 1
        self.conv = nn.Conv1d(1, dim, hop_length, stride=hop_length)

    def forward(self, audio):
        return self.conv(nn.functional.pad(audio, (0, -audio.shape[-1] % self.hop_length)))


def tiny_codec(encoder: nn.Module | None = None) -> AudioAutoencoder:
    torch.manual_seed(0)
    return AudioAutoencoder(encoder or PatchEncoder(),
                            ConvDecoder(dim=4, width=2, ratios=(2, 2)),
                            ResidualVQ(dim=4, num_codebooks=CODEBOOKS, codebook_size=2**BITS),
                            sample_rate=RATE).eval()


def test_frame_spans_tile_the_frames():
    spans = frame_spans(10, 4, 2)
    assert spans == [(0, 4, 0, 6), (4, 8, 2, 10), (8, 10, 6, 10)]
    assert frame_spans(3, 8, 1) == [(0, 3, 0, 3)]


@pytest.mark.parametrize("context", [0.0, 0.004])
def test_chunked_encode_of_a_frame_local_encoder_equals_unchunked(context):
    model = tiny_codec()
    audio = torch.randn(1, 2003)  # 501 frames, the last one partial
    full = model.encode_codes(audio[None])[0]
    chunked = encode_audio(model, audio, chunk_seconds=0.02, context_seconds=context,
                           show_progress=False)  # 40-frame chunks
    assert chunked.shape == (CODEBOOKS, 501) and torch.equal(chunked, full)
    two = encode_audio(model, audio, n_quantizers=2, chunk_seconds=0.1, show_progress=False)
    assert torch.equal(two, full[:2])


def test_chunked_decode_matches_unchunked_with_enough_context():
    model = tiny_codec()
    codes = model.encode_codes(torch.randn(1, 1, 2001))[0]
    full = model.decode_codes(codes[None], 2001)[0]
    out = decode_audio(model, codes, 2001, chunk_seconds=0.02, context_seconds=0.01,
                       show_progress=False)  # 40-frame chunks, 20 frames of context
    assert out.shape == (1, 2001)
    torch.testing.assert_close(out, full, atol=1e-5, rtol=1e-4)


def test_select_quantizers_from_bandwidth():
    info = codec_info(tiny_codec())
    assert (info.frame_rate, info.kbps(1)) == (2000.0, 8.0)
    assert select_quantizers(info) == CODEBOOKS
    assert select_quantizers(info, bandwidth=16) == 2
    assert select_quantizers(info, bandwidth=23.9) == 2
    assert select_quantizers(info, n_quantizers=1) == 1
    for kbps in (7.9, 32.0):
        with pytest.raises(CodecError, match="8 to 24 kbps"):
            select_quantizers(info, bandwidth=kbps)
    with pytest.raises(CodecError, match=r"\[1, 3\]"):
        select_quantizers(info, n_quantizers=0)


# -- the CLI on exported models --------------------------------------------------------------
def export(root: Path, name: str, *, seed: int = 0, rate: int = RATE,
           quantizer: bool = True) -> Path:
    conv = {"dim": 4, "width": 2, "ratios": [2, 2]}
    model = {"encoder": {"name": "core.conv", "params": conv},
             "decoder": {"name": "core.conv", "params": conv},
             "losses": [{"name": "core.l1"}]}
    if quantizer:
        model["quantizer"] = {"name": "core.rvq", "params": {
            "dim": 4, "num_codebooks": CODEBOOKS, "codebook_size": 2**BITS}}
    cfg = load_config({"run": {"name": name, "seed": seed},
                       "data": {"sample_rate": rate, "channels": 1}, "model": model,
                       "task": {"name": "core.autoencoder"}})
    torch.manual_seed(seed)
    module = build_model(cfg, get_registry())
    out = root / name
    out.mkdir()
    save_export(module, cfg, out)
    return out


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("codec")
    t = np.arange(int(1.3 * RATE) + 3) / RATE  # odd length, not a multiple of the hop
    wave = 0.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-t)
    sf.write(root / "in.wav", wave.astype(np.float32), RATE, subtype="FLOAT")
    return {"root": root, "model": export(root, "model"), "other": export(root, "other", seed=1),
            "rate": export(root, "rate16k", rate=16000),
            "plain": export(root, "plain", quantizer=False), "length": len(t)}


def run(*args) -> int:
    return main([str(a) for a in args])


def test_encode_then_decode(workspace, capsys):
    root, model = workspace["root"], workspace["model"]
    tokens, out = root / "a.tokens", root / "a.wav"
    assert run("encode", model, root / "in.wav", tokens, "--chunk-seconds", "0.2") == 0
    summary = json.loads(capsys.readouterr().out)
    codes, head = read_tokens(tokens)
    loaded = load(model)
    assert head.model_fingerprint == summary["fingerprint"] == model_fingerprint(loaded)
    assert (head.sample_rate, head.channels, head.length) == (RATE, 1, workspace["length"])
    assert codes.shape == (CODEBOOKS, math.ceil(workspace["length"] / HOP))
    assert summary["kbps"] == 24.0
    audio = torch.from_numpy(sf.read(root / "in.wav", dtype="float32")[0])[None]
    assert torch.equal(codes, encode_audio(loaded, audio, show_progress=False))

    assert run("decode", model, tokens, out, "--chunk-seconds", "0.2") == 0
    decoded, rate = sf.read(out, dtype="float32")
    assert rate == RATE and len(decoded) == workspace["length"]
    expected = loaded.decode_codes(codes[None], workspace["length"])[0, 0].detach()
    np.testing.assert_allclose(decoded, expected.clamp(-1, 1).numpy(), atol=1e-4)


def test_bandwidth_and_fewer_codebooks(workspace, capsys):
    root, model = workspace["root"], workspace["model"]
    tokens = root / "b.tokens"
    assert run("encode", model, root / "in.wav", tokens, "--bandwidth", "16") == 0
    assert read_tokens(tokens)[1].num_codebooks == 2
    assert run("decode", model, tokens, root / "b1.wav", "--n-quantizers", "1") == 0
    assert len(sf.read(root / "b1.wav")[0]) == workspace["length"]
    capsys.readouterr()
    assert run("decode", model, tokens, root / "b3.wav", "--n-quantizers", "3") == 1
    assert "stores 2 codebooks" in capsys.readouterr().err
    assert run("encode", model, root / "in.wav", tokens, "--bandwidth", "4") == 1
    assert "8 to 24 kbps" in capsys.readouterr().err


@pytest.mark.parametrize(("other", "reason"), [("other", "fingerprint differs"),
                                               ("rate", "sample rate 8000 Hz in the file")])
def test_decoding_with_another_model_is_a_clear_error(workspace, capsys, other, reason):
    root = workspace["root"]
    tokens = root / f"w_{other}.tokens"
    assert run("encode", workspace["model"], root / "in.wav", tokens) == 0
    capsys.readouterr()
    assert run("decode", workspace[other], tokens, root / "w.wav") == 1
    err = capsys.readouterr().err
    mine = read_tokens(tokens)[1].model_fingerprint
    theirs = model_fingerprint(load(workspace[other]))
    assert mine in err and theirs in err and reason in err and mine != theirs
    assert not (root / "w.wav").exists()


def test_reconstruct_with_fewer_codebooks(workspace, capsys):
    root, model = workspace["root"], workspace["model"]
    assert run("reconstruct", model, root / "in.wav", root / "r.wav", "--n-quantizers", "2",
               "--chunk-seconds", "0.5") == 0
    report = json.loads((root / "r.json").read_text())
    assert report["codebooks"] == 2 and report["kbps"] == 16.0 and "mel_distance" in report
    assert len(sf.read(root / "r.wav")[0]) == workspace["length"]
    assert run("reconstruct", model, root / "in.wav", root / "r2.wav", "--bandwidth", "8",
               "--no-report") == 0
    capsys.readouterr()
    assert run("reconstruct", workspace["plain"], root / "in.wav", root / "p.wav",
               "--n-quantizers", "1", "--no-report") == 1
    assert "is not a discrete codec" in capsys.readouterr().err
    assert run("encode", workspace["plain"], root / "in.wav", root / "p.tokens") == 1


def test_decoding_a_foreign_file_is_a_clear_error(workspace, capsys):
    root = workspace["root"]
    assert run("decode", workspace["model"], root / "in.wav", root / "f.wav") == 1
    assert "not an audio-core token file" in capsys.readouterr().err


# -- a fixed-bitrate codec (codec_spec scalable: False) ------------------------------------------
class FixedRateCodec(Codec):
    """Two 8-bit code rows per 2 samples (even and odd samples), which only decode together."""

    def __init__(self) -> None:
        super().__init__(sample_rate=RATE, channels=1)
        self.scale = nn.Parameter(torch.tensor(127.5))

    @classmethod
    def from_config(cls, cfg, registry, **params):
        return cls()

    def codec_spec(self):
        return CodecSpec(hop_length=2, num_codebooks=2, codebook_bits=8, scalable=False)

    def reconstruct(self, waveform):
        return self.decode_codes(self.encode_codes(waveform), waveform.shape[-1])

    def encode_codes(self, waveform, n_quantizers=None):
        assert n_quantizers in (None, 2)
        x = nn.functional.pad(waveform[:, 0], (0, waveform.shape[-1] % 2))
        x = x.reshape(x.shape[0], -1, 2).transpose(1, 2)  # (batch, 2, frames)
        return ((x.clamp(-1, 1) + 1) * self.scale).round().long()

    def decode_codes(self, codes, length=None):
        x = (codes.float() / self.scale - 1).transpose(1, 2).reshape(codes.shape[0], 1, -1)
        return x if length is None else x[..., :length]


def test_a_fixed_bitrate_codec_round_trips_and_refuses_fewer_codebooks(tmp_path):
    from audio_core.inference.codec import decode_file, encode_file, reconstruct_codec_file

    model = FixedRateCodec()
    info = codec_info(model)
    assert not info.scalable and info.kbps(2) == 2 * 8 * RATE / 2 / 1000
    audio = 0.5 * torch.sin(torch.linspace(0, 60, 1001))[None]
    source = tmp_path / "in.wav"
    sf.write(source, audio[0].numpy(), RATE, subtype="FLOAT")
    head = encode_file(model, source, tmp_path / "x.tokens", chunk_seconds=0.01,
                       context_seconds=0.0, show_progress=False)
    assert (head.num_codebooks, head.num_frames, head.length) == (2, 501, 1001)
    decode_file(model, tmp_path / "x.tokens", tmp_path / "out.wav", show_progress=False)
    back, _ = sf.read(tmp_path / "out.wav")
    assert back.shape == (1001,) and np.abs(back - audio[0].numpy()).max() <= 0.5 / 127.5 + 1e-4
    for call in (lambda: select_quantizers(info, n_quantizers=1),
                 lambda: select_quantizers(info, bandwidth=8.0),
                 lambda: decode_file(model, tmp_path / "x.tokens", tmp_path / "o.wav",
                                     n_quantizers=1),
                 lambda: reconstruct_codec_file(model, source, tmp_path / "r.wav",
                                                n_quantizers=1)):
        with pytest.raises(CodecError, match="fixed"):
            call()


def test_a_model_without_the_codec_contract_is_named():
    with pytest.raises(CodecError, match=r"Linear\) is not a discrete codec: it does not "
                                         r"implement audio_core\.models\.Codec"):
        codec_info(nn.Linear(2, 2))
