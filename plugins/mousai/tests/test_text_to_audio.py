"""Tiny end-to-end text to audio on captioned real clips, through the CLI and the trainer.

Stage 1 (the session fixture ``stage1``) is trained on the clips; ``audio-core latents``
pre-encodes them with their captions; stage 2 (``mousai.tiny_generator``: core.diffusion
with the mousai U-Net and the offline MiniLM text conditioner) trains on those latents in
two legs (``EARLY`` steps, then resumed to ``LATE``), each exported with its EMA weights.
``audio-core generate --text ... --decode-steps`` writes audio of the requested length, and
the Fréchet distance (the tests' own small embedding, :mod:`frechet`) of generated audio to
the training clips falls from the early to the late export. While stage 2 trains, every
denoiser call is watched: the learned null embedding replaces the text on exactly the
examples the task dropped, at the configured rate.
"""

from __future__ import annotations

import json
import math

import pytest
import soundfile as sf
import torch
from audio_plugin_mousai.unet import UNet1d
from conftest import RATE, load_clips
from frechet import audio_frechet

import audio_core
from audio_core.cli import main as cli
from audio_core.config import load_config
from audio_core.config.loader import read_config_file, resolve_source
from audio_core.engine.export import export_run
from audio_core.engine.trainer import Trainer

EARLY, LATE = 20, 300
VAL_EVERY = 150  # validation (FAD of sampled clips) at steps 150 and 300
COND_DROPOUT = 0.25
SECONDS = 0.256
GEN = {"steps": 20, "decode_steps": 4, "guidance": 2.0}


#: With pytest-xdist, `--dist loadgroup` keeps the tests sharing the trained stage 1 in
#: one worker (otherwise each worker trains its own).
pytestmark = pytest.mark.xdist_group("stage1")


@pytest.fixture(scope="module")
def pipeline(stage1, registry, tmp_path_factory):
    _, ae_export, _, captions = stage1
    out = tmp_path_factory.mktemp("mousai_t2a")
    latents = out / "latents"
    assert cli(["latents", str(ae_export), str(captions), str(latents)]) == 0
    data = read_config_file(resolve_source("mousai.tiny_generator", registry))

    def cfg(steps: int):
        return load_config(data, [
            f"run.output_dir={out}", f"model.params.stage1={ae_export}",
            f"data.train.params.root={latents}", f"data.segment_seconds={SECONDS}",
            f"train.max_steps={steps}", f"train.checkpoint_every={EARLY}", "train.log_every=1",
            "train.trackers=[jsonl]", "train.ema_decay=0.98", "train.optimizer.lr=1e-3",
            "data.batch_size=6", "data.num_workers=0", f"task.params.cond_dropout={COND_DROPOUT}",
            "model.conditioner.params.max_tokens=16", f"train.val_every={VAL_EVERY}",
            f"data.val={{name: core.latents, params: {{root: {latents}}}}}",
            "train.val_batches=1", "train.val_steps=2", "train.best_metric=val/fad"],
            registry=registry, check_params=True)

    null_rows: list[float] = []  # per denoiser call in training: fraction of null rows
    forward = UNet1d.forward

    def watched(self, x, t, cond=None, latent=None):
        if torch.is_grad_enabled() and cond is not None:
            # a text has [CLS] ... [SEP] (>= 2 tokens); the null embedding is one token
            null_rows.append(float((cond.mask.sum(1) == 1).float().mean()))
        return forward(self, x, t, cond, latent)

    run = out / "mousai_tiny_generator"
    exports = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(UNet1d, "forward", watched)
        Trainer(cfg(EARLY), registry=registry).fit()
        exports[EARLY] = export_run(run, out / f"export_{EARLY}")
        Trainer(cfg(LATE), registry=registry, resume=True).fit()
        exports[LATE] = export_run(run, out / f"export_{LATE}")
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    dropped = {r["step"]: r["metrics"]["diffusion/dropped"] for r in records
               if "diffusion/dropped" in r["metrics"]}
    return {"captions": captions, "run": run, "exports": exports, "null_rows": null_rows,
            "dropped": [dropped[s] for s in sorted(dropped)], "out": out}


def test_the_generator_validates_with_fad_of_clips_sampled_from_the_captions(pipeline):
    records = [json.loads(x) for x in (pipeline["run"] / "metrics.jsonl").read_text()
               .splitlines()]
    val = {r["step"]: r["metrics"] for r in records if "val/fad" in r["metrics"]}
    assert sorted(val) == [VAL_EVERY, LATE]
    for metrics in val.values():
        assert math.isfinite(metrics["val/fad"]) and math.isfinite(metrics["val/loss"])
        assert metrics["val/clips"] == 6  # one batch, one clip per caption
        assert "val/class_accuracy" not in metrics  # text conditioning: no classes
    best = json.loads((pipeline["run"] / "checkpoints" / "best" / "trainer_state.json")
                      .read_text())
    assert best["best"]["value"] == min(m["val/fad"] for m in val.values())


def test_the_null_embedding_is_used_exactly_at_the_mask_rate(pipeline):
    rows, dropped = pipeline["null_rows"], pipeline["dropped"]
    assert len(rows) == LATE and len(dropped) == LATE
    assert rows == dropped  # the null embedding stands in on exactly the dropped examples
    rate, examples = sum(rows) / len(rows), 6 * LATE
    assert abs(rate - COND_DROPOUT) < 4 * math.sqrt(COND_DROPOUT * (1 - COND_DROPOUT)
                                                    / examples), rate


def test_generate_cli_writes_audio_of_the_requested_length(pipeline):
    out = pipeline["out"] / "bird.wav"
    assert cli(["generate", str(pipeline["exports"][LATE]), "--text", "a piano playing",
                "--steps", "5", "--decode-steps", "3", "--guidance", "5", "--seconds", "0.3",
                "--seed", "2", "-o", str(out)]) == 0
    audio, rate = sf.read(out, dtype="float32")
    assert rate == RATE and audio.shape == (round(0.3 * RATE), 2)
    assert abs(audio).max() <= 1.0 and abs(audio).max() > 0
    again = pipeline["out"] / "again.wav"
    assert cli(["generate", str(pipeline["exports"][LATE]), "--text", "a piano playing",
                "--steps", "5", "--decode-steps", "3", "--guidance", "5", "--seconds", "0.3",
                "--seed", "2", "-o", str(again)]) == 0
    assert (sf.read(again, dtype="float32")[0] == audio).all()  # same seed, same audio


def test_frechet_distance_to_the_training_clips_falls_as_training_proceeds(pipeline):
    clips, texts = load_clips(pipeline["captions"])
    distance = {}
    for steps, export in pipeline["exports"].items():
        model = audio_core.load(export)
        audio = torch.cat([model.generate(texts, num_samples=len(texts), seed=seed,
                                          seconds=SECONDS, **GEN) for seed in (0, 1)])
        assert audio.shape == (2 * len(texts), 2, round(SECONDS * RATE))
        distance[steps] = audio_frechet(audio, clips, RATE)
    assert distance[LATE] < distance[EARLY], distance


def test_the_stage2_export_holds_ema_weights_and_names_its_stage1(pipeline, stage1):
    info = json.loads((pipeline["exports"][LATE] / "export.json").read_text())
    assert info["weights"] == "ema" and info["model_type"] == "core.latent_diffusion"
    model = audio_core.load(pipeline["exports"][LATE])
    assert type(model.stage1).__name__ == "DiffusionAutoencoder"
    assert model.config.model.params["stage1"] == str(stage1[1])
