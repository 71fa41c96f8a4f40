"""Tasks own validation (:meth:`Task.evaluate`): a class-conditioned latent diffusion model
(core components only, on the waveform) samples during validation and logs ``val/fad`` and
``val/class_accuracy``; ``train.best_metric`` keeps ``RUN/checkpoints/best``, which survives
a resume and exports; an unknown metric is a one-line error naming the logged ones.
Reconstruction tasks keep their metrics (``val/si_sdr``, ...)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

import audio_core
from audio_core.cli import main
from audio_core.engine.trainer import best_mode, improves
from audio_core.errors import ConfigError
from audio_core.metrics.classifier import NearestClassMean, class_accuracy

pytestmark = pytest.mark.integration

KINDS = ["tone", "noise"]


def generator_config(folder, name="gen", **train) -> dict:
    synthetic = {"name": "core.synthetic", "params": {"num_items": 8, "kinds": KINDS}}
    return {
        "run": {"name": name, "output_dir": str(folder), "seed": 0},
        "data": {"sample_rate": 8000, "channels": 1, "segment_seconds": 0.25, "batch_size": 2,
                 "train": synthetic,
                 "val": {"name": "core.synthetic",
                         "params": {"num_items": 4, "kinds": KINDS, "seed": 1}}},
        "model": {"params": {"stage1": None, "steps": 2},
                  "denoiser": {"name": "core.conv_denoiser", "params": {"hidden": 8, "blocks": 1}},
                  "conditioner": {"name": "core.class_embedding",
                                  "params": {"classes": KINDS, "dim": 4}},
                  "objective": {"name": "core.rectified_flow"}, "sampler": {"name": "core.euler"}},
        "task": {"name": "core.diffusion"},
        "train": {"max_steps": 4, "log_every": 1, "val_every": 2, "val_batches": 2,
                  "val_steps": 2, "checkpoint_every": 2, "num_samples": 1,
                  "trackers": ["jsonl"], "optimizer": {"lr": 1e-3}, **train},
    }


def val_records(helpers, run):
    return {r["step"]: r["metrics"] for r in helpers.read_metrics(run)
            if any(k.startswith("val/") for k in r["metrics"])}


@pytest.mark.slow
def test_a_generator_logs_fad_and_class_accuracy_and_keeps_the_best(tmp_path, helpers,
                                                                    in_process):
    trainer = in_process(generator_config(tmp_path, best_metric="val/fad"))
    records = val_records(helpers, tmp_path / "gen")
    assert sorted(records) == [2, 4]
    for metrics in records.values():
        assert {"val/fad", "val/class_accuracy", "val/loss"} <= set(metrics)
        assert math.isfinite(metrics["val/fad"]) and metrics["val/fad"] >= 0
        assert 0.0 <= metrics["val/class_accuracy"] <= 1.0
    best = tmp_path / "gen" / "checkpoints" / "best"
    state = json.loads((best / "trainer_state.json").read_text())
    fads = {step: m["val/fad"] for step, m in records.items()}
    assert state["best"]["value"] == min(fads.values())
    assert state["best"]["step"] == min(fads, key=fads.get) == trainer.best["step"]
    assert (best / "model.safetensors").is_file()
    generated = list((tmp_path / "gen" / "samples").rglob("*generated*.wav"))
    assert len(generated) == 2  # train.num_samples = 1, at steps 2 and 4

    # the best value is trainer state: a resumed run keeps it
    last = json.loads((tmp_path / "gen" / "checkpoints" / "step_00000004" /
                       "trainer_state.json").read_text())
    assert last["best"] == state["best"]
    cfg = generator_config(tmp_path, best_metric="val/fad", max_steps=6)
    resumed = in_process(cfg, run_dir=tmp_path / "gen", resume=True)
    assert resumed.best["value"] <= state["best"]["value"]
    # another best metric on resume starts its own record
    cfg = generator_config(tmp_path, best_metric="val/loss", max_steps=8)
    other = in_process(cfg, run_dir=tmp_path / "gen", resume=True)
    assert other.best["metric"] == "val/loss" and other.best["step"] == 8

    out = tmp_path / "best_export"
    assert main(["export", str(tmp_path / "gen"), str(out), "--checkpoint", str(best)]) == 0
    model = audio_core.load(out)
    assert model.generate("noise", seed=0, steps=2).shape == (1, 1, 2000)


@pytest.mark.slow
def test_an_unknown_best_metric_names_the_logged_ones(tmp_path, in_process):
    embedding = {"name": "core.logmel", "params": {"sample_rate": 8000, "n_mels": 32}}
    with pytest.raises(ConfigError, match=r"val/fid.*val/class_accuracy.*val/fad"):
        in_process(generator_config(tmp_path, best_metric="val/fid", max_steps=2,
                                    val_embedding=embedding))
    frames = in_process.last.task.embedding().embed(torch.rand(1, 4000) - 0.5, 8000)
    assert frames.shape[-1] == 2 * 32  # mean and spread of the 32 configured bands


def test_best_metric_without_validation_is_ignored_with_a_warning(tmp_path, in_process,
                                                                  caplog):
    trainer = in_process(generator_config(tmp_path, best_metric="val/fad", val_every=0,
                                          max_steps=1))
    assert "train.best_metric=val/fad is ignored: validation is off" in caplog.text
    assert trainer.best is None
    assert not (tmp_path / "gen" / "checkpoints" / "best").exists()


@pytest.mark.slow
def test_a_reconstruction_task_keeps_its_metrics(tmp_path, helpers, in_process):
    config = helpers.write_config(
        tmp_path, run={"name": "ae", "output_dir": str(tmp_path)},
        data={**helpers.TINY["data"],
              "val": {"name": "core.synthetic", "params": {"num_items": 4}}},
        train={**helpers.TINY["train"], "max_steps": 2, "val_every": 2, "val_batches": 1,
               "best_metric": "val/si_sdr"})
    trainer = in_process(config)
    metrics = val_records(helpers, tmp_path / "ae")[2]
    assert {"val/si_sdr", "val/mel_distance"} <= set(metrics)
    assert trainer.best["mode"] == "max"
    assert (tmp_path / "ae" / "checkpoints" / "best" / "ema.safetensors").is_file()


def test_best_mode_and_improvement():
    assert best_mode("val/fad") == "min" and best_mode("val/loss") == "min"
    assert best_mode("val/class_accuracy") == "max" and best_mode("val/si_sdr") == "max"
    assert best_mode("val/class_accuracy", "min") == "min"
    assert improves(1.0, None, "min") and not improves(float("nan"), None, "min")
    assert improves(0.5, {"value": 1.0}, "min") and not improves(0.5, {"value": 1.0}, "max")


def test_nearest_class_mean_separates_two_clusters():
    gen = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    labels = torch.tensor([0, 1] * 10)
    real = centers[labels] + 0.3 * torch.randn(20, 2, generator=gen)
    assert torch.equal(NearestClassMean().fit(real, labels).predict(centers), torch.tensor([0, 1]))
    fake = centers[torch.tensor([0, 1, 1, 0])]
    asked = torch.tensor([0, 1, 0, -1])  # the -1 example is left out
    assert class_accuracy(real, labels, fake, asked) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="labelled real clips"):
        class_accuracy(real, torch.full((20,), -1), fake, asked)


@pytest.mark.slow
def test_two_ranks_score_the_whole_validation_set_alike(tmp_path, helpers, in_process):
    """5 validation items over 2 ranks under ZeRO-3 (3 per rank, the sampler wraps one
    around; batches of 2 + 1): the embeddings of both ranks' clips are gathered and scored
    (sampling makes no collective call), and the best checkpoint is written."""
    cfg = generator_config(tmp_path, name="two", best_metric="val/class_accuracy",
                           val_batches=0, max_steps=2)
    cfg["data"]["val"]["params"]["num_items"] = 5
    cfg["deepspeed"] = {"zero_stage": 3}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    helpers.run_worker([{"argv": ["train", str(path)], "result": "two.json"}], tmp_path)
    result = json.loads((tmp_path / "two.json").read_text())
    assert result["code"] == 0, result["stderr"][-3000:]
    metrics = val_records(helpers, tmp_path / "two")[2]
    assert math.isfinite(metrics["val/fad"]) and 0 <= metrics["val/class_accuracy"] <= 1
    assert metrics["val/clips"] == 6  # both ranks' clips
    sixths = metrics["val/class_accuracy"] * 6
    assert sixths == pytest.approx(round(sixths))
    state = json.loads((tmp_path / "two" / "checkpoints" / "best" / "trainer_state.json")
                       .read_text())
    assert state["best"]["metric"] == "val/class_accuracy" and state["best"]["step"] == 2
