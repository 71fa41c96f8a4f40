"""2-rank ZeRO-2 CPU runs (gloo) of both RAE stages under torch.distributed.run: stage 1
(tiny wav2vec2 RAE) and stage 2 (a class-conditioned DiT on its latents) each train,
resume and export; the frozen encoder stays out of the optimizer, the checkpoints and the
weights; the stage-2 export generates audio of the requested class and length."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import class_folder

import audio_core
from audio_core.cli import main
from audio_core.testing import run_ranks

WORKER = Path(__file__).with_name("dist_worker.py")
TIMEOUT = 500  # a first run JIT-builds DeepSpeed's comm op (~80 s)
CLASSES = ("effects", "music", "speech")

pytestmark = pytest.mark.integration


def launch(out: Path) -> None:
    run_ranks(WORKER, out, cwd=out, timeout=TIMEOUT,
              env={"AUDIO_CORE_CACHE_DIR": str(out / "cache")})


def ranks(out: Path, stage: str) -> list[dict]:
    return [torch.load(out / f"{stage}_rank{r}.pt", weights_only=True) for r in range(2)]


def logged_steps(run: Path) -> list[int]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [x["step"] for x in lines if "loss/total" in x["metrics"]]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rae_dist")
    class_folder(out / "clips", CLASSES, 1.2)
    launch(out)
    return out


@pytest.fixture(scope="module")
def stage1(run):
    return run, ranks(run, "stage1")


@pytest.fixture(scope="module")
def stage2(run):
    return run, ranks(run, "stage2")


def test_stage1_trains_resumes_and_keeps_replicas_equal(stage1):
    out, (r0, r1) = stage1
    assert (r0["first"]["step"], r0["resumed"]["step"]) == (4, 6)
    assert logged_steps(out / "stage1") == [1, 2, 3, 4, 5, 6]
    for phase in ("first", "resumed"):
        for key, value in r0[phase]["params"].items():
            assert torch.equal(value, r1[phase]["params"][key]), key
    assert any(not torch.equal(r0["first"]["params"][k], v)
               for k, v in r0["resumed"]["params"].items())


def test_stage1_encoder_is_unchanged_and_never_optimised(stage1):
    for rank in stage1[1]:
        assert rank["encoder_unchanged"] and rank["encoder_frozen"]
        assert not rank["encoder_in_optimizer"]
        assert rank["optimizer_numel"] == rank["trainable_numel"]


def test_stage1_encoder_is_in_no_checkpoint_and_no_export(stage1):
    from safetensors.torch import load_file

    from audio_core.storage.safe_load import load_engine_state

    out, (r0, _) = stage1
    expected = sorted(r0["trained"])
    assert expected and all(k.startswith(("decoder.", "normalizer.")) for k in expected)
    ckpt = sorted((out / "stage1" / "checkpoints").iterdir())[-1]
    states = load_engine_state(next(ckpt.rglob("mp_rank_00_model_states.pt")))
    assert sorted(states["module"]) == expected
    assert sorted(load_file(str(ckpt / "model.safetensors"))) == expected
    assert not [p for p in ckpt.rglob("*") if "encoder" in p.name]
    assert sorted(load_file(str(out / "stage1_export" / "model.safetensors"))) == expected


def test_stage1_export_rebuilds_the_encoder_and_reconstructs(stage1, registry):
    out, (r0, _) = stage1
    assert r0["reconstruct_equal"] and r0["loaded_encoder_equal"]
    model = audio_core.load(out / "stage1_export", registry=registry)
    for key, value in r0["trained"].items():
        assert torch.equal(model.state_dict()[key], value), key
    wave = 0.1 * torch.randn(1, 1, 24000)
    assert model.reconstruct(wave).shape == (1, 1, 24000)


def test_stage2_trains_resumes_and_exports_ema_weights(stage2):
    out, (r0, r1) = stage2
    assert (r0["first"]["step"], r0["resumed"]["step"]) == (4, 6)
    assert logged_steps(out / "stage2") == [1, 2, 3, 4, 5, 6]
    for key, value in r0["resumed"]["params"].items():
        assert torch.equal(value, r1["resumed"]["params"][key]), key
    info = json.loads((out / "stage2_export" / "export.json").read_text())
    assert info["weights"] == "ema" and info["model_type"] == "core.latent_diffusion"


def test_stage2_generates_the_requested_class_and_length(stage2, capsys):
    out = stage2[0]
    model = audio_core.load(out / "stage2_export")
    assert type(model.denoiser).__name__ == "DiT" and model.denoiser.head_depth == 1
    assert model.conditioner.classes == list(CLASSES)
    assert model.stage1 is not None and model.latent_dim == 64
    capsys.readouterr()
    outputs = {}
    for label in ("music", "speech"):
        wav = out / "gen" / f"{label}.wav"
        assert main(["generate", str(out / "stage2_export"), "--class", label, "--steps", "3",
                     "--seconds", "0.7", "--seed", "3", "-o", str(wav)]) == 0
        settings = json.loads(capsys.readouterr().out)
        assert settings["class"] == label and settings["steps"] == 3
        outputs[label], rate = sf.read(wav)
        assert rate == 16000 and len(outputs[label]) == round(0.7 * 16000)
    assert not np.allclose(outputs["music"], outputs["speech"])  # the class steers it
    assert main(["generate", str(out / "stage2_export"), "--class", "birds", "-o",
                 str(out / "gen" / "x.wav")]) == 1
    assert "birds" in capsys.readouterr().err


def test_the_class_check_benchmark_judges_the_stage2_export(stage2):
    """benchmarks/rae_class_check.py end to end on the 2-rank run's export and clips."""
    out = stage2[0]
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "rae_class_check.py"
    report, figure = out / "class_check.json", out / "class_check.png"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, str(script), str(out / "stage2_export"),
                           str(out / "clips"), str(out / "clips"), "--num-samples", "2",
                           "--seconds", "0.5", "--crops", "2", "--steps", "2", "--out",
                           str(report), "--png", str(figure)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(report.read_text())
    generated = result["generated"]
    assert generated["lengths"] == [generated["expected_length"]] == [8000]
    assert result["train_crops"] == 12 and result["val_crops"] == 12  # 6 clips x 2 crops
    assert set(generated["per_class"]) == set(CLASSES)
    for kind in ("latent", "audio", "mel_audio", "mel_first_half", "mel_second_half"):
        assert 0 <= generated[f"{kind}_accuracy"] <= 1
    assert all(c["finite"] and len(c["rms_halves"]) == 2 for c in generated["per_class"].values())
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
