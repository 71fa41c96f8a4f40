"""`audio-core eval` on an exported codec: table, JSON, CSV, plots, Opus baseline, errors."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from audio_core.cli import main

needs_opus = pytest.mark.skipif(shutil.which("opusenc") is None,
                                reason="opus-tools not installed (the tox test env installs it: "
                                "scripts/install_system_packages.sh)")


@pytest.mark.slow
@needs_opus
def test_eval_codec_with_opus_baseline(codec_export, eval_data, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", str(codec_export), str(eval_data), "--bandwidth", "4", "8",
                 "--baseline", "opus", "--out", str(out), "--no-dnsmos"]) == 0
    printed = capsys.readouterr().out
    for system in ("model@4kbps", "model@8kbps", "opus@6kbps", "opus@8kbps"):
        assert system in printed
    assert "mel" in printed and "STOI" in printed
    result = json.loads((out / "results.json").read_text())
    systems = result["systems"]
    assert set(systems) == {"model@4kbps", "model@8kbps", "opus@6kbps", "opus@8kbps"}
    model = systems["model@8kbps"]
    assert model["kbps"] == 8 and model["files"] == 3
    # real bitrate of the codes: 2 codebooks... 4 codebooks x 4 bits x ceil(T / 32) frames
    assert model["real_kbps"] == pytest.approx(8.0, rel=0.01)
    assert 0 < model["codebook_used"] <= 1 and 1 <= model["codebook_perplexity"] <= 16
    assert model["rtf"] > 0 and model["fad"] >= 0
    assert systems["opus@6kbps"]["real_kbps"] == pytest.approx(6.0, rel=0.25)
    # speech metrics only on the files under speech/, Opus beats an untrained model
    rows = result["files"]
    assert all(("stoi" in r) == ("/speech/" in r["file"]) for r in rows)
    assert systems["opus@8kbps"]["mel_distance"] < model["mel_distance"]
    assert result["fad"]["embedding"]["name"] == "core.logmel"
    with (out / "files.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 12 and {"file", "system", "mel_distance", "si_sdr"} <= set(table[0])
    for plot in ("metrics_vs_bitrate.png", "worst_files.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_eval_a_single_file_without_fad(codec_export, eval_data, tmp_path):
    out = tmp_path / "one"
    assert main(["eval", str(codec_export), str(eval_data / "music" / "tone.wav"),
                 "--out", str(out), "--no-fad", "--speech", "no"]) == 0
    result = json.loads((out / "results.json").read_text())
    assert list(result["systems"]) == ["model@8kbps"]
    assert result["fad"] == {} and "pesq" not in result["files"][0]


def test_eval_errors_are_clear(codec_export, eval_data, tmp_path, capsys, monkeypatch):
    assert main(["eval", str(codec_export), str(tmp_path / "missing"), "--out",
                 str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", str(codec_export), str(eval_data), "--bandwidth", "100",
                 "--out", str(tmp_path / "x")]) == 1
    assert "outside this model's range" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))  # no opusenc
    assert main(["eval", str(codec_export), str(eval_data), "--baseline", "opus",
                 "--out", str(tmp_path / "x")]) == 1
    assert "apt-get install opus-tools" in capsys.readouterr().err


def test_ogg_payload_counts_audio_packets_only():
    from audio_core.evaluation.opus import audio_payload_bytes

    def page(*packets: bytes) -> bytes:
        lacing = b"".join(bytes([255] * (len(p) // 255) + [len(p) % 255]) for p in packets)
        return (b"OggS" + bytes(22) + bytes([len(lacing)]) + lacing + b"".join(packets))

    stream = page(b"H" * 19) + page(b"T" * 300) + page(b"a" * 40, b"b" * 260)
    assert audio_payload_bytes(stream) == 300
