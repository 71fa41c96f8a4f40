"""A 2-rank ZeRO-2 CPU run (gloo) of the adversarial VAE: trains, checkpoints, resumes
exactly (KL warm-up included), exports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from audio_core.schedules import as_schedule
from audio_core.testing import run_ranks

WORKER = Path(__file__).with_name("dist_worker.py")

pytestmark = pytest.mark.integration
#: The KL weight schedule dist_worker.py trains with (its OVERRIDES).
KL = {"start": 0.0, "end": 1.0e-3, "warmup_steps": 8, "delay_steps": 1}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae_dist_zero2")
    run_ranks(WORKER, out, cwd=out, timeout=900)
    return torch.load(out / "result.pt", weights_only=True)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_both_engines_run_zero2(result):
    assert result["zero"] == (2, 2)


def test_checkpoints_resume_exactly(result):
    assert result["resumed_step"] == 6 and len(result["checkpoints"]) >= 2
    resumed, straight = result["resumed"], result["straight"]
    assert resumed.keys() == straight.keys()
    assert any(k.startswith("normalizer.") for k in resumed)
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], atol=1e-6, rtol=1e-5,
                                   msg=lambda m, k=key: f"{k}: {m}")
    assert same(result["disc"][0], result["disc"][1])


def test_the_kl_warm_up_is_exact_at_every_step_and_survives_resume(result):
    schedule = as_schedule(KL)
    expected = {step: schedule(step - 1) for step in range(1, 7)}  # logged 1-based
    assert result["kl_straight"] == pytest.approx(expected, abs=1e-15)
    assert result["kl_resumed"] == pytest.approx(expected, abs=1e-15)
    assert expected[1] == 0.0 and 0 < expected[3] < expected[6] < KL["end"]


def test_latent_statistics_are_identical_on_both_ranks(result):
    rank0, rank1 = result["stats_ranks"]
    assert same(rank0, rank1)
    assert int(rank0["stats_updates"]) == 6  # one per training forward (grad_accum 1)
    assert not torch.equal(rank0["normalizer.std"], torch.ones_like(rank0["normalizer.std"]))


def test_export_loads_and_round_trips(result):
    exported, resumed = result["exported"], result["resumed"]
    assert exported.keys() == resumed.keys()
    for key in resumed:
        torch.testing.assert_close(exported[key], resumed[key])
    assert result["latent_shape"] == (1, 16, -(-3000 // 64))
    assert result["decoded_shape"] == (1, 1, 3000)
