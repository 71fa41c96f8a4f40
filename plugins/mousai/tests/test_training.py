"""The mousai.autoencoder task through audio-core's trainer (one process): a tiny diffusion
autoencoder fitted to crops of six captioned real clips (the session fixture ``stage1``),
validated, exported with its EMA weights; decoding with more sampler steps comes closer to
the input than a single step."""

from __future__ import annotations

import json
import math

import pytest
import torch
from audio_plugin_mousai.model import DiffusionAutoencoder
from conftest import STAGE1_CLIP as CLIP
from conftest import STAGE1_STEPS as STEPS
from conftest import load_clips

#: With pytest-xdist, `--dist loadgroup` keeps the tests sharing the trained stage 1 in
#: one worker (otherwise each worker trains its own).
pytestmark = pytest.mark.xdist_group("stage1")


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
def trained(stage1):
    run, _, model, captions = stage1
    clips, _ = load_clips(captions)
    start = clips.shape[-1] // 2  # a fixed crop of each clip, away from its onset
    return run, model, clips[..., start:start + CLIP]


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
    assert latent.shape == (6, 8, CLIP // 256) and latent.abs().max() < 1
    error = {steps: sum(spectral_convergence(model.decode(latent, CLIP, steps=steps, seed=s),
                                             clips) for s in (0, 1)) / 2
             for steps in (1, 4)}
    assert error[4] < error[1], error
