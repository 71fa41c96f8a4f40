"""inspect_path: per-file facts, totals and bad files for `audio-core data inspect`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_core.data.base import DatasetError
from audio_core.data.inspect import InspectReport, inspect_path


def test_inspect_folder(tmp_path, tone):
    tone(tmp_path / "a.wav", seconds=1.0, sr=16000)
    tone(tmp_path / "sub" / "b.flac", seconds=2.0, sr=44100, channels=2)
    tone(tmp_path / "sub" / "c.wav", seconds=0.5, sr=16000, channels=2)
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    sf.write(tmp_path / "nan.wav", np.full(100, np.nan, np.float32), 8000, subtype="FLOAT")
    report = inspect_path(tmp_path)
    assert isinstance(report, InspectReport)
    assert len(report.files) == 3 and report.total_seconds == pytest.approx(3.5)
    assert report.hours == pytest.approx(3.5 / 3600)
    assert report.sample_rates == {16000: 2, 44100: 1}
    assert report.channels == {1: 1, 2: 2}
    assert report.formats == {"FLAC": 1, "WAV": 2}
    bad = {b.path.rsplit("/", 1)[-1]: b.reason for b in report.bad_files}
    assert bad.keys() == {"broken.wav", "nan.wav"} and "NaN" in bad["nan.wav"]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["totals"]["files"] == 3 and data["totals"]["bad_files"] == 2
    assert data["totals"]["sample_rates"] == {"16000": 2, "44100": 1}
    assert data["files"][0].keys() >= {"path", "duration", "sample_rate", "channels", "format"}
    text = report.summary()
    assert "3 audio files" in text and "2 bad" in text and "broken.wav" in text
    quick = inspect_path(tmp_path, verify=False, cache=False)  # headers only: NaN unnoticed
    assert len(quick.files) == 4 and len(quick.bad_files) == 1
    cached = inspect_path(tmp_path, verify=False)  # the cache remembers the verified result
    assert len(cached.files) == 3 and len(cached.bad_files) == 2


def test_inspect_single_file_and_missing(tmp_path, tone):
    f = tone(tmp_path / "x.wav", seconds=0.25, sr=8000)
    report = inspect_path(f)
    assert [e.frames for e in report.files] == [2000] and not report.bad_files
    with pytest.raises(DatasetError, match="no such file or folder"):
        inspect_path(tmp_path / "missing")
    empty = inspect_path(tmp_path / "x.wav").to_dict()
    assert empty["totals"]["channels"] == {"1": 1}
