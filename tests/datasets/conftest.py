"""Fixtures for the dataset tests: an isolated index cache and a WAV writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(autouse=True)
def _index_cache(tmp_path, monkeypatch):
    """Keep the index cache inside the test's tmp dir (never ~/.cache)."""
    monkeypatch.setenv("AUDIO_CORE_CACHE_DIR", str(tmp_path / "index-cache"))
    return tmp_path / "index-cache"


def write_tone(path: Path, *, seconds: float = 1.0, sr: int = 16000, channels: int = 1,
               freq: float = 440.0, subtype: str | None = None) -> Path:
    """A sine sweep-ish test file; every sample differs, so different crops differ."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * (freq + 50 * t) * t)
    data = np.stack([x * (0.5 + 0.5 * c / max(1, channels - 1)) for c in range(channels)], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), sr, subtype=subtype)
    return path


@pytest.fixture
def tone():
    return write_tone
