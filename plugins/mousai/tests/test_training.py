"""The mousai.autoencoder task through audio-core's trainer (one process): a tiny diffusion
autoencoder fitted to four tone clips, validated, exported with its EMA weights; decoding
the clips with more sampler steps comes closer to them than a single step."""

from __future__ import annotations

import json
import math

import pytest
import soundfile as sf
import torch
from audio_plugin_mousai.model import DiffusionAutoencoder
from conftest import write_tones

import audio_core
from audio_core.config import load_config
from audio_core.config.loader import read_config_file, resolve_source
from audio_core.engine.export import export_run
from audio_core.engine.trainer import Trainer

STEPS = 500
CLIP = 2048  # samples: each clip is one fixed training example (no random crop)


def spectral_convergence(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over FFT sizes 256, 512, 1024 of ``||S_est| - |S_ref||_F / ||S_ref||_F``: a
    phase-blind distance (the latent holds magnitudes, not phases)."""
    def mag(w: torch.Tensor, n: int) -> torch.Tensor:
        return torch.stft(w.reshape(-1, w.shape[-1]), n, n // 4, window=torch.hann_window(n),
                          return_complex=True).abs()

    sizes = (256, 512, 1024)
    return sum(float((mag(estimate, n) - mag(reference, n)).norm() / mag(reference, n).norm())
               for n in sizes) / len(sizes)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, registry):
    out = tmp_path_factory.mktemp("mousai_train")
    tones = write_tones(out / "tones", count=4, seconds=CLIP / 16000)
    data = read_config_file(resolve_source("mousai.tiny_autoencoder", registry))
    folder = {"name": "core.folder", "params": {"root": str(tones), "random_crop": False}}
    data["data"].update(train=folder, val=folder)
    cfg = load_config(data, [
        f"run.output_dir={out}", f"train.max_steps={STEPS}", f"train.val_every={STEPS}",
        f"train.checkpoint_every={STEPS}", "train.log_every=50", "train.val_batches=1",
        "train.trackers=[jsonl]", "train.ema_decay=0.95", "train.optimizer.lr=2e-3",
        f"data.segment_seconds={CLIP / 16000}", "data.batch_size=4", "data.num_workers=0",
        "task.params.val_decode_steps=4"], registry=registry, check_params=True)
    trainer = Trainer(cfg, registry=registry)
    trainer.fit()
    run = out / "mousai_tiny_autoencoder"
    model = audio_core.load(export_run(run, out / "export"), registry=registry)
    clips = torch.stack([torch.from_numpy(sf.read(p, dtype="float32")[0].T)
                         for p in sorted(tones.glob("*.wav"))])
    return run, model, clips


def test_the_task_trains_validates_and_exports_ema_weights(trained):
    run, model, _ = trained
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["metrics"]["loss/total"] for r in records if "loss/total" in r["metrics"]]
    assert len(losses) == STEPS // 50 + 1 and all(math.isfinite(v) for v in losses)
    assert {"diffusion/t", "throughput/audio_s_per_s"} <= set(records[0]["metrics"])
    val = [r["metrics"] for r in records if "val/si_sdr" in r["metrics"]]
    assert len(val) == 1 and math.isfinite(val[0]["val/mel_distance"])
    info = json.loads((run.parent / "export" / "export.json").read_text())
    assert info["weights"] == "ema" and info["model_type"] == "mousai.diffusion_autoencoder"
    assert isinstance(model, DiffusionAutoencoder) and not model.training


def test_more_decode_steps_come_closer_to_the_input(trained):
    _, model, clips = trained
    latent = model.encode(clips)
    assert latent.shape == (4, 8, CLIP // 256) and latent.abs().max() < 1
    error = {steps: sum(spectral_convergence(model.decode(latent, CLIP, steps=steps, seed=s),
                                             clips) for s in (0, 1)) / 2
             for steps in (1, 4)}
    assert error[4] < error[1], error
    # the latent tells the clips apart: each clip decodes closest to itself
    decoded = model.decode(latent, CLIP, steps=4)
    pairs = [[spectral_convergence(decoded[i:i + 1], clips[j:j + 1]) for j in range(4)]
             for i in range(4)]
    assert [min(range(4), key=row.__getitem__) for row in pairs] == [0, 1, 2, 3], pairs
