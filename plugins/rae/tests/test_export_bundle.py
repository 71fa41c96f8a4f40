"""A stage-2 export travels with everything it runs on: ``rae.dit_tiny`` over a
``rae.wav2vec2_tiny`` stage 1 whose frozen encoder loads pretrained weights from a local
folder. The stage-1 export copies that folder (``frozen/encoder``), the stage-2 export copies
the stage-1 export (``stage1``, nested); moved elsewhere, with the run folders, the stage-1
export and the pretrained folder deleted, it generates the same audio from any working
directory."""

from __future__ import annotations

import json
import shutil

import torch
import transformers
from conftest import PLUGIN, TINY_SPEECH, class_folder, seeded
from test_validation import CLASSES, STAGE1, STAGE2, train

import audio_core
from audio_core.cli import main as cli
from audio_core.engine.export import export_run


def test_a_moved_two_stage_export_with_frozen_weights_generates_the_same(tmp_path,
                                                                        monkeypatch):
    registry = PLUGIN.load().registry
    pretrained = tmp_path / "hub" / "wav2vec2"
    seeded(lambda: transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY_SPEECH)),
           seed=3).save_pretrained(pretrained)
    runs = tmp_path / "runs"
    train("rae.wav2vec2_tiny", [*STAGE1, f"run.output_dir={runs}", "run.name=stage1",
                                "model.encoder.params.config=null",
                                f"model.encoder.params.pretrained={pretrained}"], registry)
    stage1 = export_run(runs / "stage1", tmp_path / "stage1_export", registry=registry)
    assert (stage1 / "frozen" / "encoder" / "config.json").is_file()
    clips = class_folder(tmp_path / "clips", CLASSES, 1.0)
    assert cli(["latents", str(stage1), str(clips), str(tmp_path / "latents"), "--labels"]) == 0
    train("rae.dit_tiny", [
        *STAGE2, f"run.output_dir={runs}", f"model.params.stage1={stage1}", "train.val_every=0",
        f"data.train.params.root={tmp_path / 'latents'}",
        f"model.conditioner.params.classes=[{', '.join(CLASSES)}]"], registry)
    export = export_run(runs / "rae_dit_tiny", tmp_path / "stage2_export", registry=registry)

    nested = export / "stage1"
    assert json.loads((nested / "export.json").read_text())["bundled"] == {
        "model.encoder.params.pretrained": {"path": "frozen/encoder",
                                            "original": str(pretrained)}}
    before = audio_core.load(export, registry=registry).generate("high", seed=4, seconds=0.5)

    moved = tmp_path / "shared" / "dit"
    shutil.copytree(export, moved)
    for gone in (runs, stage1, export, pretrained):
        shutil.rmtree(gone)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = audio_core.load(moved, registry=registry)
    after = model.generate("high", seed=4, seconds=0.5)
    assert after.shape == (1, 1, 8000)
    assert torch.equal(before, after)
