"""Opus as a baseline codec, through Debian's ``opus-tools`` (``opusenc``/``opusdec``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from audio_core.audio.io import load_audio, save_audio
from audio_core.audio.transforms import fit_length
from audio_core.errors import MissingPackageError

#: opusenc's bitrate range per channel, kbps.
MIN_KBPS, MAX_KBPS = 6.0, 256.0


def opus_available() -> bool:
    return shutil.which("opusenc") is not None and shutil.which("opusdec") is not None


def require_opus() -> None:
    if not opus_available():
        raise MissingPackageError(
            "--baseline opus needs the opusenc and opusdec programs, which are not on PATH; "
            "install them with `apt-get install opus-tools` (Debian/Ubuntu) or your system's "
            "opus-tools package")


def audio_payload_bytes(data: bytes) -> int:
    """Bytes of the audio packets in an Ogg Opus stream: every page body except those of the
    two header packets (OpusHead, OpusTags), without the Ogg page headers."""
    total, packets, pos = 0, 0, 0
    while pos + 27 <= len(data):
        if data[pos:pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        segments = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + segments]
        for size in lacing:
            if packets >= 2:
                total += size
            if size < 255:
                packets += 1
        pos += 27 + segments + sum(lacing)
    return total


def opus_roundtrip(audio: Tensor, sample_rate: int, kbps: float) -> tuple[Tensor, float]:
    """Encode ``audio`` ``(channels, time)`` with Opus at ``kbps`` (VBR target) and decode
    it back: ``(decoded (channels, time), real kbps of the audio packets)`` (without the
    Ogg container and header packets, which add a few kB per file)."""
    require_opus()
    per_channel = kbps / audio.shape[0]
    if not MIN_KBPS <= per_channel <= MAX_KBPS:
        raise ValueError(f"Opus supports {MIN_KBPS:g}-{MAX_KBPS:g} kbps per channel; "
                         f"{kbps:g} kbps for {audio.shape[0]} channel(s) is outside it")
    with tempfile.TemporaryDirectory(prefix="audio-core-opus-") as tmp:
        src, coded, out = Path(tmp, "in.wav"), Path(tmp, "coded.opus"), Path(tmp, "out.wav")
        save_audio(src, audio.clamp(-1, 1), sample_rate)
        for cmd in (["opusenc", "--quiet", "--bitrate", f"{kbps:g}", str(src), str(coded)],
                    ["opusdec", "--quiet", "--rate", str(sample_rate), str(coded), str(out)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): "
                                   f"{done.stderr.strip()[-500:]}")
        decoded, _ = load_audio(out, sample_rate=sample_rate, channels=audio.shape[0])
        real_kbps = (audio_payload_bytes(coded.read_bytes()) * 8
                     / (audio.shape[-1] / sample_rate) / 1000)
    return fit_length(decoded.to(torch.float32), audio.shape[-1]), real_kbps
