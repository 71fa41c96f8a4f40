"""Issue 24's fine-tuning check: an imported EnCodec fine-tunes on 2 ranks (gloo, ZeRO-2)
with discriminators, resumes exactly, and exports with its discriminators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from audio_core.engine.imports import import_model  # noqa: E402

WORKER = Path(__file__).with_name("finetune_dist_worker.py")
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """What rank 0 of the 2-rank fine-tune wrote."""
    from audio_core.engine.ops import prebuild_cpu_ops

    out = tmp_path_factory.mktemp("finetune_dist")
    torch.manual_seed(0)
    config = transformers.EncodecConfig(hidden_size=8, num_filters=4, upsampling_ratios=[4, 2],
                                        codebook_size=16, num_lstm_layers=1,
                                        target_bandwidths=[12.0, 24.0])
    ref = transformers.EncodecModel(config)
    with torch.no_grad():
        for layer in ref.quantizer.layers:
            layer.codebook.embed.normal_(0, 0.1)
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
            layer.codebook.cluster_size.fill_(4.0)
    ref.save_pretrained(out / "hf")
    imported = import_model(out / "hf", out / "imported")
    prebuild_cpu_ops(("ShareMemCommBuilder",))  # a compiler run, if any, before the timeout
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(WORKER), str(out), str(imported)]
    proc = subprocess.run(cmd, env=env, cwd=out, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"worker failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-6000:]}")
    return {**torch.load(out / "result.pt", weights_only=True), "imported": imported}


def close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5,
                                   msg=lambda m, k=key: f"{k}: {m}")


def test_runs_zero2_on_both_engines(result):
    assert result["zero"] == [2, 2] and result["step"] == 4


def test_resume_equals_the_straight_run_including_discriminators(result):
    for role in ("generator", "discriminator"):
        close(result["resumed"][role], result["straight"][role])


def test_it_trained_away_from_the_import(result):
    from safetensors.torch import load_file

    start = load_file(str(result["imported"] / "model.safetensors"))
    tuned = result["resumed"]["generator"]
    assert any(not torch.equal(tuned[k], start[k]) for k in start if "encoder" in k)


def test_export_with_discriminators_reloads(result):
    close(result["exported"], result["resumed"]["generator"])
    close(result["exported_discriminators"], result["resumed"]["discriminator"])
    assert result["decoded_shape"] == (1, 1, 2400)
