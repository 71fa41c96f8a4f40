"""`audio-core eval` says what it dropped: missing speech-metric packages (install hint
printed verbatim, not eaten as rich markup) and FAD over too few files."""

from __future__ import annotations

import json
import sys

from audio_core.cli import main
from audio_core.evaluation.runner import FAD_MIN_FILES, fad_sample_note


def test_missing_speech_packages_warn_with_the_whole_install_hint(
        codec_export, eval_data, tmp_path, capsys, caplog, monkeypatch):
    for module in ("pesq", "pystoi"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    out = tmp_path / "eval"
    assert main(["eval", str(codec_export), str(eval_data), "--out", str(out),
                 "--no-dnsmos", "--speech", "yes"]) == 0
    captured = capsys.readouterr()
    printed = " ".join(captured.out.split())  # the console wraps long notes
    assert "pip install 'audio-core[eval]'" in printed
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(w.startswith("pesq skipped") for w in warned)
    assert any(w.startswith("stoi skipped") for w in warned)
    assert f"FAD over only 3 files (fewer than {FAD_MIN_FILES})" in printed
    notes = json.loads((out / "results.json").read_text())["notes"]
    assert any(n.startswith("FAD over only 3 files") for n in notes)


def test_fad_sample_note_only_below_the_threshold():
    assert fad_sample_note(FAD_MIN_FILES) is None
    assert "9 generated clips" in fad_sample_note(9, "generated clips")
