"""``scripts/sizing.py``: figures measured from the model, advice from the ZeRO arithmetic."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "sizing.py"


@pytest.fixture(scope="module")
def sizing():
    spec = importlib.util.spec_from_file_location("sizing_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_measures_the_presets_model(sizing):
    from audio_core.config import load_config
    from audio_core.engine.trainer import build_task
    from audio_core.plugins import get_registry

    one, two = (sizing.measure("core.tiny_autoencoder", batch_size=b) for b in (1, 2))
    model = build_task(load_config("core.tiny_autoencoder", []), get_registry()).build_model()
    assert one["trainable_params"] == {"generator": sum(p.numel() for p in model.parameters())}
    assert one["activation_bytes_per_audio_s"] > 0
    # activations grow linearly with the audio in a step: per second they stay the same
    assert two["activation_bytes_per_audio_s"] == pytest.approx(
        one["activation_bytes_per_audio_s"], rel=0.05)
    assert one["cpu_step_s_per_audio_s"] > 0 and one["cpu_peak_rss_bytes"] > 0


def record(params: float, act_per_s: float = 1e6) -> dict:
    return {"preset": "x", "roles": ["generator"], "trainable_params": {"generator": params},
            "frozen_params": 0, "activation_bytes_per_audio_s": act_per_s, "batch_size": 8,
            "segment_seconds": 1.0}


@pytest.mark.parametrize(("params", "gpus", "expected"), [
    (1e8, 8, ["ZeRO-0", "ZeRO-0", "ZeRO-0"]),
    # 2 B params: 32 GB of states unpartitioned; ZeRO-1 over 8 GPUs: 8 + 3 = 11 GB
    (2e9, 8, ["ZeRO-1", "ZeRO-0", "ZeRO-0"]),
    # 8 B params on one GPU: 16-bit weights + gradients (32 GB) fit 40 and 80 GB with the
    # optimizer offloaded; on 24 GB only full offload fits
    (8e9, 1, ["ZeRO-3 + offload_optimizer/param=cpu", "ZeRO-2 + offload_optimizer=cpu",
              "ZeRO-2 + offload_optimizer=cpu"]),
])
def test_advice_follows_the_zero_arithmetic(sizing, params, gpus, expected):
    advice = sizing.advise(record(params), gpus, reserve_gb=2.0)
    assert [advice[f"{size}GB"].split(" (")[0] for size in (24, 40, 80)] == expected


def test_activations_that_fit_nowhere_are_said(sizing):
    advice = sizing.advise(record(1e6, act_per_s=1e12), 8, reserve_gb=2.0)
    assert advice["80GB"].startswith("does not fit")
