"""`eval` reads, runs and scores long files in blocks: memory is bounded by the block, not
the file (a 10-hour sparse file costs no disk and little time to read)."""

from __future__ import annotations

import struct

import numpy as np
import soundfile as sf
import torch

from audio_core.evaluation import runner
from audio_core.evaluation.systems import Coded, System

RATE = 8000


def sparse_wav(path, seconds: float, rate: int = RATE):
    """A mono 16-bit WAV of ``seconds`` of silence whose data is a hole in the file."""
    size = int(seconds * rate) * 2
    header = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", size)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + size)
    return path


def test_a_ten_hour_file_is_read_in_bounded_blocks(tmp_path):
    path = sparse_wav(tmp_path / "long.wav", 10 * 3600)
    step = int(runner.BLOCK_SECONDS * RATE)
    sizes = [block.shape[-1] for block in runner.iter_blocks(path, RATE, 1)]
    assert max(sizes) == step and sum(sizes) == 10 * 3600 * RATE
    assert len(sizes) == 10 * 3600 * RATE // step


def test_long_files_are_scored_block_by_block(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "BLOCK_SECONDS", 4.0)
    t = np.arange(30 * RATE) / RATE
    sf.write(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), RATE)
    seen = []

    def identity(audio):
        seen.append(audio.shape[-1])
        return Coded(audio.clone(), torch.zeros(2, audio.shape[-1] // 80, dtype=torch.long), 1.0)

    system = System("identity", "model", identity, 1.0, codebook_size=16)
    result = runner.evaluate_files([tmp_path / "a.wav"], [system], sample_rate=RATE,
                                   channels=1, is_speech=lambda p: False)
    assert max(seen) == 4 * RATE and sum(seen) == 30 * RATE  # never the whole file
    (row,) = result.rows
    assert row["seconds"] == 30.0 and row["mel_distance"] < 1e-6
    assert row["real_kbps"] == 1.0
    assert result.systems["identity"]["codebook_used"] == 1 / 16
