"""A toy two-stage pipeline end to end through the CLI: a continuous tiny autoencoder,
`audio-core latents`, `audio-core stats`, a class-conditioned latent flow model trained on
the latents (in one process from `core.latents`; on 2 ranks under ZeRO-2 from the same
latents written as tar shards, `latents --shards`, read by `core.shards`), and
`audio-core generate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

import audio_core
from audio_core.cli import main

pytestmark = pytest.mark.integration

RATE = 16000
CLASSES = ("low", "noise")


def write_class_folder(root: Path) -> Path:
    """``root/low/*.wav`` (low sines) and ``root/noise/*.wav`` (noise bursts), 0.5-0.8 s."""
    rng = np.random.default_rng(0)
    for label in CLASSES:
        (root / label).mkdir(parents=True)
        for i in range(4):
            n = int(rng.uniform(0.5, 0.8) * RATE)
            t = np.arange(n) / RATE
            wave = (0.4 * np.sin(2 * np.pi * rng.uniform(80, 200) * t) if label == "low"
                    else 0.2 * rng.standard_normal(n))
            sf.write(root / label / f"{i}.wav", wave.astype(np.float32), RATE)
    return root


def stage2_config(folder: Path, name: str, train_data: dict | None = None, **extra) -> Path:
    data = {
        "run": {"name": name, "output_dir": str(folder), "seed": 0},
        "data": {"sample_rate": RATE, "channels": 1, "segment_seconds": 0.25, "batch_size": 2,
                 "train": {"name": "core.latents", "params": {"root": str(folder / "lat")}},
                 "val": None},
        "model": {
            "params": {"stage1": str(folder / "stage1_export"),
                       "latent_stats": str(folder / "stats.safetensors"),
                       "steps": 4, "guidance": 2.0},
            "denoiser": {"name": "core.conv_denoiser", "params": {"hidden": 16, "blocks": 2}},
            "conditioner": {"name": "core.class_embedding",
                            "params": {"classes": list(CLASSES), "dim": 8}},
            "objective": {"name": "core.rectified_flow"},
            "sampler": {"name": "core.heun"},
        },
        "task": {"name": "core.diffusion", "params": {"cond_dropout": 0.2}},
        "train": {"max_steps": 4, "log_every": 1, "val_every": 0, "checkpoint_every": 4,
                  "ema_decay": 0.9, "trackers": ["jsonl"],
                  "optimizer": {"lr": 1e-3}},
        **extra,
    }
    if train_data is not None:
        data["data"]["train"] = train_data
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.slow
def test_two_stage_pipeline_through_the_cli(tmp_path, helpers, in_process, capsys):
    folder = tmp_path
    config = helpers.write_config(
        folder, "stage1.yaml", run={"name": "stage1", "output_dir": str(folder)},
        data={"sample_rate": RATE, "segment_seconds": 0.25, "batch_size": 2,
              "train": {"name": "core.synthetic", "params": {"num_items": 16}}, "val": None},
        train={"max_steps": 4, "checkpoint_every": 4, "log_every": 1, "val_every": 0,
               "trackers": ["jsonl"]})
    in_process(config, ["model.quantizer=null", "model.encoder.params.dim=4"])
    export = folder / "stage1_export"
    assert main(["export", str(folder / "stage1"), str(export)]) == 0
    clips = write_class_folder(folder / "clips")
    assert main(["latents", str(export), str(clips), str(folder / "lat"), "--labels"]) == 0
    assert main(["stats", str(export), str(folder / "lat"),
                 str(folder / "stats.safetensors")]) == 0
    capsys.readouterr()

    trainer = in_process(stage2_config(folder, "stage2"))
    logs = helpers.read_metrics(folder / "stage2")
    steps = [r for r in logs if "loss/total" in r["metrics"]]
    assert len(steps) == 4 and all(np.isfinite(r["metrics"]["loss/total"]) for r in steps)
    assert "throughput/audio_s_per_s" in steps[0]["metrics"]
    assert trainer.task.model.stage1 is not None
    out2 = folder / "stage2_export"
    assert main(["export", str(folder / "stage2"), str(out2)]) == 0
    info = json.loads((out2 / "export.json").read_text())
    assert info["weights"] == "ema" and info["model_type"] == "core.latent_diffusion"

    capsys.readouterr()
    wav = folder / "gen" / "noise.wav"
    argv = ["generate", str(out2), "--class", "noise", "--steps", "3", "--seconds", "0.5",
            "--num-samples", "2", "--seed", "7", "-o", str(wav)]
    assert main(argv) == 0
    settings = json.loads(capsys.readouterr().out)
    assert settings["steps"] == 3 and settings["guidance"] == 2.0
    first = [sf.read(p)[0] for p in settings["outputs"]]
    assert [len(x) for x in first] == [RATE // 2] * 2
    assert not np.array_equal(first[0], first[1])  # two different samples
    assert json.loads((folder / "gen" / "noise.json").read_text())["class"] == "noise"
    assert main(argv) == 1  # the outputs exist: not replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    again = [sf.read(p)[0] for p in settings["outputs"]]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))  # same seed

    model = audio_core.load(out2)
    assert audio_core.models.capabilities(model) == ["generator"]
    assert main(["generate", str(out2), "--class", "cat", "-o", str(folder / "x.wav")]) == 1
    assert "cat" in capsys.readouterr().err  # an unknown class is named with the valid ones

    # the same stage-2 training on 2 ranks under ZeRO-2 (separate processes), reading the
    # latents as tar shards (what a run streaming them from object storage reads)
    assert main(["latents", str(export), str(clips), str(folder / "lat_tar"), "--labels",
                 "--shards", "--shard-mb", "0.001"]) == 0
    config = stage2_config(folder, "stage2_z2", deepspeed={"zero_stage": 2}, train_data={
        "name": "core.shards", "params": {"urls": str(folder / "lat_tar")}})
    helpers.run_worker([{"argv": ["train", str(config)], "result": "z2.json"}], folder)
    result = json.loads((folder / "z2.json").read_text())
    assert result["code"] == 0, result["stderr"][-3000:]
    run = folder / "stage2_z2"
    steps = [r for r in helpers.read_metrics(run) if "loss/total" in r["metrics"]]
    assert len(steps) == 4
    assert main(["export", str(run), str(folder / "z2_export")]) == 0
    assert main(["generate", str(folder / "z2_export"), "--class", "low", "--steps", "2",
                 "--seconds", "0.3", "-o", str(folder / "z2_low.wav")]) == 0
    assert len(sf.read(folder / "z2_low.wav")[0]) == round(0.3 * RATE)
