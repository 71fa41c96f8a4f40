"""``train.precision`` and ``train.compile`` on 2 real CPU ranks (``precision_worker.py``).

One launch per session; the DeepSpeed comm op is prebuilt (``deepspeed_ops``) and
torch.compile's C++ build happens inside the launch, whose limit is generous.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORKER = Path(__file__).with_name("precision_worker.py")
SCENARIOS = ("bf16", "fp16", "compile")
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT")
TIMEOUT = 900  # includes an inductor C++ compile of a tiny model on a loaded 2-core machine


@pytest.fixture(scope="module")
def results(tmp_path_factory, deepspeed_ops) -> dict:
    out = tmp_path_factory.mktemp("precision")
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", str(WORKER), str(out), *SCENARIOS],
                          env=env, cwd=out, capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(f"precision worker failed ({proc.returncode}):\n"
                    f"{(proc.stdout + proc.stderr)[-6000:]}")
    return {name: torch.load(out / f"{name}.pt", weights_only=True) for name in SCENARIOS}


@pytest.mark.parametrize("task", ["adversarial", "frozen_encoder", "diffusion", "bsq"])
def test_bf16_step_is_finite_with_float32_spectra(results, task):
    """One bf16 ZeRO-2 step per task: finite loss, applied; every engine computes in bf16
    under autocast; every STFT (losses, discriminators, mel front ends) sees float32 input
    with autocast off."""
    got = results["bf16"][task]
    if "missing" in got:
        pytest.skip(f"bsq plugin not installed: {got['missing']}")
    assert got["skipped"] == 0.0 and torch.isfinite(torch.tensor(got["loss"]))
    assert set(got["dtypes"].values()) == {"torch.bfloat16"}
    assert all(s == 1 for s in got["steps"].values())
    assert got["layers"], "no conv/linear layer ran"
    assert all(dtype == "torch.bfloat16" and on for _, dtype, on in got["layers"])
    if task != "diffusion":  # the diffusion task's conv denoiser has no spectral part
        assert got["stft"], "no STFT ran"
    assert all(dtype == "torch.float32" and not on for _, dtype, on in got["stft"]), got["stft"]


def test_adversarial_bf16_runs_spectral_losses_and_discriminator_in_float32(results):
    where = {module for module, _, _ in results["bf16"]["adversarial"]["stft"]}
    # the discriminators' spectrogram: audio_core.audio.dsp.stft.stacked_spectrogram
    assert {"audio_core.components.spectral_losses", "audio_core.audio.dsp.stft",
            "audio_core.audio.dsp.modules"} <= where


def test_fp16_overflow_on_one_rank_skips_the_step_everywhere_and_halves_the_scale(results):
    ranks = results["fp16"]
    for got in ranks:
        assert got["ds_fp16"]["hysteresis"] == 1 and got["ds_fp16"]["loss_scale"] == 0
        assert got["initial_scale"] == 2.0 ** 16
        overflow = got["overflow"]
        assert overflow["loss_finite"]  # the loss was fine: only the gradients overflowed
        assert not overflow["applied"] and overflow["skipped_steps"] == 1
        assert overflow["unchanged"]
        assert overflow["scale"] == 2.0 ** 15
        clean = got["clean"]
        assert clean["applied"] and clean["changed"] and clean["skipped_steps"] == 1
        assert clean["scale"] == 2.0 ** 15


def test_fp16_resume_restores_the_loss_scale(results):
    for got in results["fp16"]:
        assert got["fresh_scale"] == 2.0 ** 16
        assert got["resumed_scale"] == 2.0 ** 15
        assert got["resumed_skipped_steps"] == 1


def test_compile_trains_with_plain_state_dict_keys(results):
    got = results["compile"]
    assert got["compiled"] and got["keys_plain"] and got["steps"] == 2
    assert all(torch.isfinite(torch.tensor(got["losses"])))
