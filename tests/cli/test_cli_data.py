"""`audio-core data inspect` on real clips and on a folder with bad files."""

import json

import numpy as np
import soundfile as sf

from audio_core.cli import main


def make_messy_folder(root):
    root.mkdir()
    t = np.arange(8000) / 16000
    sf.write(root / "good.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    sf.write(root / "stereo.flac", np.stack([np.sin(2 * np.pi * 220 * t)] * 2, 1) * 0.3, 16000)
    (root / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 20)
    (root / "empty.wav").write_bytes(b"")
    nan = np.full(4000, 0.1, dtype=np.float32)
    nan[100] = np.nan
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    return root


def test_inspect_reports_the_three_bad_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUDIO_CORE_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_messy_folder(tmp_path / "messy")
    assert main(["data", "inspect", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    bad = {b["path"].rsplit("/", 1)[-1]: b["reason"] for b in report["bad_files"]}
    assert set(bad) == {"corrupt.wav", "empty.wav", "nan.wav"}
    assert "NaN" in bad["nan.wav"] and "empty" in bad["empty.wav"]
    assert report["totals"]["files"] == 2

    assert main(["data", "inspect", str(folder), "--files"]) == 0
    out = capsys.readouterr().out
    assert "2 audio files" in out and "bad files (3)" in out and "corrupt.wav" in out


def test_inspect_committed_clips(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AUDIO_CORE_CACHE_DIR", str(tmp_path / "cache"))
    from pathlib import Path

    clips = Path(__file__).resolve().parents[1] / "data"
    assert main(["data", "inspect", str(clips), "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["files"] >= 6 and totals["bad_files"] == 0
    assert {"16000", "44100"} <= set(totals["sample_rates"])


def test_inspect_missing_path_is_an_error(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path / "nope")]) == 1
    assert "nope" in capsys.readouterr().err
