"""``rae.dit_tiny`` validates while it trains: shrunk, on the latents of a 2-step
``rae.wav2vec2_tiny`` export of a two-class folder, it logs ``val/fad`` and
``val/class_accuracy`` of clips sampled with the validation labels and keeps the best FAD in
``RUN/checkpoints/best`` (the preset's ``train.best_metric``)."""

from __future__ import annotations

import json
import math

from conftest import PLUGIN, class_folder

from audio_core import distributed
from audio_core.cli import main as cli
from audio_core.config import load_config
from audio_core.engine.export import export_run
from audio_core.engine.trainer import Trainer

CLASSES = ("low", "high")
STAGE1 = ["model.decoder.params.width=32", "model.decoder.params.depth=1",
          "model.decoder.params.heads=2", "data.segment_seconds=0.5", "data.batch_size=2",
          "data.train.params={num_items: 8}", "data.val=null", "train.max_steps=2",
          "train.checkpoint_every=2", "model.losses=[{name: core.l1}]"]
STAGE2 = ["model.denoiser.params.width=32", "model.denoiser.params.depth=1",
          "model.denoiser.params.heads=2", "model.denoiser.params.head_width=64",
          "model.conditioner.params.dim=16", "model.params.steps=4", "data.segment_seconds=0.5",
          "data.batch_size=2", "train.max_steps=4", "train.val_every=2", "train.val_batches=2",
          "train.val_steps=2", "train.checkpoint_every=4", "train.num_samples=1",
          "train.ema_decay=0.9"]
COMMON = ["data.num_workers=0", "train.log_every=1", "train.trackers=[jsonl]"]


def train(preset, overrides, registry):
    cfg = load_config(preset, [*overrides, *COMMON], registry=registry, check_params=True)
    trainer = Trainer(cfg, registry=registry)
    try:
        trainer.fit()
    finally:
        distributed.teardown()
    return trainer


def test_dit_tiny_logs_fad_and_class_accuracy_and_keeps_the_best(tmp_path):
    registry = PLUGIN.load().registry
    train("rae.wav2vec2_tiny", [*STAGE1, f"run.output_dir={tmp_path}", "run.name=stage1"],
          registry)
    stage1 = export_run(tmp_path / "stage1", tmp_path / "stage1_export", registry=registry)
    clips = class_folder(tmp_path / "clips", CLASSES, 1.0)
    assert cli(["latents", str(stage1), str(clips), str(tmp_path / "latents"), "--labels"]) == 0

    trainer = train("rae.dit_tiny", [
        *STAGE2, f"run.output_dir={tmp_path}", f"model.params.stage1={stage1}",
        f"data.train.params.root={tmp_path / 'latents'}",
        f"model.conditioner.params.classes=[{', '.join(CLASSES)}]"], registry)

    assert trainer.cfg.train.best_metric == "val/fad"  # the preset's
    run = tmp_path / "rae_dit_tiny"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = {r["step"]: r["metrics"] for r in records if "val/fad" in r["metrics"]}
    assert sorted(val) == [2, 4]
    for metrics in val.values():
        assert math.isfinite(metrics["val/fad"]) and metrics["val/fad"] >= 0
        assert 0.0 <= metrics["val/class_accuracy"] <= 1.0
        assert math.isfinite(metrics["val/loss"])
    best = json.loads((run / "checkpoints" / "best" / "trainer_state.json").read_text())
    assert best["best"]["value"] == min(m["val/fad"] for m in val.values())
    assert (run / "checkpoints" / "best" / "ema.safetensors").is_file()
    assert list((run / "samples").rglob("*generated*.wav"))
