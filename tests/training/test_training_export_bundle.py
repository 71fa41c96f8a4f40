"""Self-contained exports (:mod:`audio_core.storage.bundle`): a stage-2 export copies its
stage-1 model into ``EXPORT/stage1/`` and frozen weights into ``EXPORT/frozen/<slot>/``, names
them relative to the export, and loads from any working directory after the folder is moved;
a tampered stage-1 copy is refused by the fingerprint check."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import audio_core
from audio_core.cli import main
from audio_core.engine.export import export_run
from audio_core.models.latent_diffusion import Stage1Mismatch
from audio_core.storage.bundle import BundleError, bundle, relocate

pytestmark = pytest.mark.integration

RATE = 16000


def stage2_config(folder, stage1) -> dict:
    return {
        "run": {"name": "stage2", "output_dir": str(folder / "runs"), "seed": 0},
        "data": {"sample_rate": RATE, "channels": 1, "segment_seconds": 0.25, "batch_size": 2,
                 "train": {"name": "core.synthetic", "params": {"num_items": 8}}, "val": None},
        "model": {"params": {"stage1": str(stage1), "steps": 2},
                  "denoiser": {"name": "core.conv_denoiser", "params": {"hidden": 8, "blocks": 1}},
                  "objective": {"name": "core.rectified_flow"}, "sampler": {"name": "core.euler"}},
        "task": {"name": "core.diffusion"},
        "train": {"max_steps": 2, "log_every": 1, "val_every": 0, "checkpoint_every": 2,
                  "trackers": ["jsonl"], "optimizer": {"lr": 1e-3}},
    }


@pytest.mark.slow
def test_a_moved_stage2_export_generates_the_same_audio(tmp_path, helpers, in_process,
                                                        monkeypatch):
    runs = tmp_path / "runs"
    config = helpers.write_config(
        tmp_path, "stage1.yaml", run={"name": "stage1", "output_dir": str(runs)},
        train={**helpers.TINY["train"], "max_steps": 2, "checkpoint_every": 2, "ema_decay": 0.0})
    in_process(config, helpers.NO_VAE)
    stage1 = tmp_path / "stage1_export"
    assert main(["export", str(runs / "stage1"), str(stage1)]) == 0
    in_process(stage2_config(tmp_path, stage1))
    export = tmp_path / "stage2_export"
    assert main(["export", str(runs / "stage2"), str(export)]) == 0

    assert (export / "stage1" / "model.safetensors").is_file()
    assert yaml.safe_load((export / "config.yaml").read_text())["model"]["params"]["stage1"] \
        == "stage1"
    info = json.loads((export / "export.json").read_text())
    assert info["bundled"] == {"model.params.stage1": {"path": "stage1",
                                                       "original": str(stage1)}}
    before = audio_core.load(export).generate(seed=5, seconds=0.25)

    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(export, moved)
    tampered = tmp_path / "elsewhere" / "tampered"
    shutil.copytree(export, tampered)
    for gone in (runs, stage1, export):
        shutil.rmtree(gone)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    model = audio_core.load(moved)
    assert model.config.model.params["stage1"] == str(stage1)  # as trained
    after = model.generate(seed=5, seconds=0.25)
    assert after.shape == (1, 1, RATE // 4)
    assert torch.equal(before, after)

    weights = tampered / "stage1" / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 0.5
    save_file(tensors, weights)
    with pytest.raises(Stage1Mismatch, match=r"fingerprint [0-9a-f]{16}.*fingerprint "
                                             r"[0-9a-f]{16}"):
        audio_core.load(tampered)

    shutil.rmtree(moved / "stage1")
    with pytest.raises(BundleError, match="stage1 is missing"):
        audio_core.load(moved)


def fake_export(folder, model_section: dict) -> None:
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(2)}, folder / "model.safetensors")
    (folder / "config.yaml").write_text(yaml.safe_dump({"model": model_section}))
    (folder / "export.json").write_text(json.dumps({"step": 0}))


def test_bundle_copies_a_nested_stage1_with_its_frozen_weights(tmp_path):
    weights = tmp_path / "hub" / "wav2vec2"
    weights.mkdir(parents=True)
    (weights / "config.json").write_text("{}")
    first = tmp_path / "first"
    fake_export(first, {"encoder": {"name": "x.frozen", "params": {"pretrained": str(weights)}}})
    data = {"model": {"params": {"stage1": str(first)},
                      "conditioner": {"name": "x.t5", "params": {"path": str(weights)}}}}
    out = tmp_path / "out"
    out.mkdir()
    record = bundle(data, out, None, export_run)

    assert record == {
        "model.params.stage1": {"path": "stage1", "original": str(first)},
        "model.conditioner.params.path": {"path": "frozen/conditioner",
                                          "original": str(weights)}}
    assert data["model"]["params"]["stage1"] == "stage1"
    assert (out / "frozen" / "conditioner" / "config.json").is_file()
    nested = out / "stage1"
    assert (nested / "frozen" / "encoder" / "config.json").is_file()
    assert yaml.safe_load((nested / "config.yaml").read_text())["model"]["encoder"]["params"] \
        == {"pretrained": "frozen/encoder"}
    assert json.loads((nested / "export.json").read_text())["bundled"] == {
        "model.encoder.params.pretrained": {"path": "frozen/encoder", "original": str(weights)}}

    resolved = relocate(data, out, record)
    assert resolved["model"]["params"]["stage1"] == str((out / "stage1").resolve())


@pytest.mark.parametrize("path", ["../outside", "/etc", ""])
def test_a_bundled_path_outside_the_export_is_refused(tmp_path, path):
    record = {"model.params.stage1": {"path": path, "original": "x"}}
    with pytest.raises(BundleError, match="must name a folder inside the export"):
        relocate({"model": {"params": {"stage1": "x"}}}, tmp_path, record)
