"""`latents` and `stats` never replace what they did not write, never resume onto latents of
another model or dataset, redo shards whose progress line was torn, refuse damaged indexes,
and write files others can read."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from audio_core.cli import main
from audio_core.latents.store import LatentsError, read_index


def _latents(ws, out, *extra) -> int:
    return main(["latents", str(ws["model"]), str(ws["clips"]), str(out), *map(str, extra)])


@pytest.mark.parametrize("target", ["weights", "index", "input", "json"])
def test_stats_never_replaces_a_file_it_did_not_write(latents_workspace, tmp_path, capsys,
                                                      target):
    ws = latents_workspace
    lat = tmp_path / "lat"
    assert _latents(ws, lat) == 0
    export = tmp_path / "export"
    shutil.copytree(ws["model"], export)
    wav = next(ws["clips"].rglob("*.wav"))
    mine = tmp_path / "mine"
    mine.write_bytes(b"user data")
    (tmp_path / "mine.json").write_text("{\"user\": 1}")
    out = {"weights": export / "model.safetensors", "index": lat / "index.json",
           "input": wav, "json": mine}[target]
    protected = out.with_name(out.name + ".json") if target == "json" else out
    before = protected.read_bytes()
    capsys.readouterr()
    code = main(["stats", str(export), str(lat if target != "input" else wav.parent), str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert str(out) in err and "Traceback" not in err
    assert protected.read_bytes() == before


def test_stats_overwrite_moves_the_users_file_aside(latents_workspace, tmp_path, capsys):
    ws = latents_workspace
    out = tmp_path / "stats.st"
    (tmp_path / "stats.st.json").write_text("my notes")
    assert main(["stats", str(ws["model"]), str(ws["clips"]), str(out)]) == 1
    assert main(["stats", str(ws["model"]), str(ws["clips"]), str(out), "--overwrite"]) == 0
    aside = list(tmp_path.glob("stats.st.json.old-*"))
    assert len(aside) == 1 and aside[0].read_text() == "my notes"
    # an earlier statistics file and its summary are replaced without --overwrite
    assert main(["stats", str(ws["model"]), str(ws["clips"]), str(out)]) == 0


def test_latents_never_replaces_a_users_index(latents_workspace, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.json").write_text("{\"my\": \"index\"}")
    assert _latents(latents_workspace, out) == 1
    assert "index.json" in capsys.readouterr().err
    assert (out / "index.json").read_text() == "{\"my\": \"index\"}"
    assert _latents(latents_workspace, out, "--overwrite") == 0
    assert read_index(out)["items"]
    aside = list(tmp_path.glob("mine.old-*"))
    assert (aside[0] / "index.json").read_text() == "{\"my\": \"index\"}"


def test_latents_into_an_export_is_refused(latents_workspace, tmp_path, capsys):
    export = tmp_path / "export"
    shutil.copytree(latents_workspace["model"], export)
    assert _latents(latents_workspace, export / "lat") == 1
    assert "inside the export folder" in capsys.readouterr().err
    assert sorted(p.name for p in export.iterdir()) == ["config.yaml", "export.json",
                                                        "model.safetensors"]


def test_resuming_with_another_model_or_dataset_names_both(latents_workspace, tmp_path,
                                                           capsys):
    ws = latents_workspace
    out = tmp_path / "lat"
    assert _latents(ws, out) == 0
    index = (out / "index.json").read_text()
    capsys.readouterr()
    assert main(["latents", str(ws["other"]), str(ws["clips"]), str(out)]) == 1
    err = capsys.readouterr().err
    key = json.loads((out / "latents.json").read_text())
    assert "another model" in err and key["model"] in err
    other = tmp_path / "other_clips"
    shutil.copytree(ws["clips"] / "cat", other)
    assert main(["latents", str(ws["model"]), str(other), str(out)]) == 1
    err = capsys.readouterr().err
    assert "another data" in err and key["data"] in err
    assert (out / "index.json").read_text() == index  # nothing changed
    assert _latents(ws, out) == 0  # the same model and data: fine


def test_a_torn_progress_line_is_redone(latents_workspace, tmp_path, capsys):
    ws = latents_workspace
    straight, torn = tmp_path / "straight", tmp_path / "torn"
    assert _latents(ws, straight, "--shard-mb", "0.00001") == 0
    assert _latents(ws, torn, "--shard-mb", "0.00001") == 0
    progress = torn / "rank00000" / "progress.jsonl"
    lines = progress.read_text().splitlines()
    assert len(lines) == 5
    lines[1] = lines[1][: len(lines[1]) // 2]  # a power cut in the middle of line 2
    progress.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert _latents(ws, torn, "--shard-mb", "0.00001") == 0
    assert json.loads(capsys.readouterr().out)["items"] == 1  # only the torn shard's item
    got = {r["index"]: (r["frames"], r["path"]) for r in read_index(torn)["items"]}
    assert got == {r["index"]: (r["frames"], r["path"])
                   for r in read_index(straight)["items"]}
    assert len(progress.read_text().splitlines()) == 5  # the torn line is gone


@pytest.mark.parametrize("edit, message", [
    (lambda item: item.update(frames=10**12), "frames"),
    (lambda item: item.update(frames="3"), "frames"),
    (lambda item: item.update(shard="/etc/passwd"), "inside the latents folder"),
    (lambda item: item.update(shard="../../x.safetensors"), "inside the latents folder"),
    (lambda item: item.pop("index"), "index"),
    (lambda item: item.update(seconds=100.0), "frames/s"),
])
def test_a_tampered_index_is_refused_at_load(latents_workspace, tmp_path, edit, message):
    out = tmp_path / "lat"
    assert _latents(latents_workspace, out) == 0
    index = json.loads((out / "index.json").read_text())
    edit(index["items"][1])
    (out / "index.json").write_text(json.dumps(index))
    with pytest.raises(LatentsError, match=message):
        read_index(out)


def test_written_files_follow_the_umask(latents_workspace, tmp_path):
    old = os.umask(0o022)
    try:
        assert _latents(latents_workspace, tmp_path / "lat") == 0
        assert main(["stats", str(latents_workspace["model"]), str(tmp_path / "lat"),
                     str(tmp_path / "s.st")]) == 0
    finally:
        os.umask(old)
    files = [*(tmp_path / "lat").rglob("*.safetensors"), tmp_path / "lat" / "index.json",
             tmp_path / "s.st", tmp_path / "s.st.json"]
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o644"}
