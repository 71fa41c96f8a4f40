"""JSONL backend: lines parse, survive interruption, samples and params land on disk."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import soundfile as sf
import torch

from audio_core.tracking import JsonlTracker, flatten_params


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_metrics_lines_parse_and_are_flushed(tmp_path):
    tracker = JsonlTracker(tmp_path)
    tracker.log_metrics({"loss": 0.5, "lr": torch.tensor(1e-4)}, step=1)
    # readable before close: every line is flushed
    assert _lines(tmp_path / "metrics.jsonl")[0]["metrics"] == {"loss": 0.5,
                                                                "lr": float(torch.tensor(1e-4))}
    tracker.log_metrics({"loss": float("nan"), "grad_norm": math.inf}, step=2)
    tracker.close()
    rows = _lines(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(isinstance(r["time"], float) for r in rows)
    assert rows[1]["metrics"] == {"loss": None, "grad_norm": None}  # strict JSON, no NaN
    with JsonlTracker(tmp_path) as resumed:  # a resumed run appends
        resumed.log_metrics({"loss": 0.1}, step=3)
    assert [r["step"] for r in _lines(tmp_path / "metrics.jsonl")] == [1, 2, 3]


def test_nothing_lost_when_process_dies(tmp_path):
    code = (
        "import os, sys\n"
        "from audio_core.tracking import JsonlTracker\n"
        "t = JsonlTracker(sys.argv[1])\n"
        "for s in range(5): t.log_metrics({'loss': s / 10}, step=s)\n"
        "os._exit(1)  # no close, no atexit, no buffer flush\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False, timeout=60)
    rows = _lines(tmp_path / "metrics.jsonl")
    assert [r["metrics"]["loss"] for r in rows] == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_audio_images_and_params(tmp_path):
    with JsonlTracker(tmp_path) as tracker:
        stereo = 0.5 * torch.randn(2, 1600).clamp(-1, 1)
        tracker.log_audio("val/sample 0", stereo.bfloat16(), 16000, step=42)
        tracker.log_image("spec", np.random.rand(8, 10), step=42)
        tracker.log_params({"model": {"dim": 64, "layers": [1, 2]}, "lr": 1e-3})
        tracker.log_params({"seed": 3})
    wav = tmp_path / "samples" / "step_0000042" / "val" / "sample 0.wav"
    data, sr = sf.read(wav, always_2d=True)
    assert sr == 16000 and data.shape == (1600, 2)
    assert (tmp_path / "images" / "step_0000042" / "spec.png").stat().st_size > 0
    params = json.loads((tmp_path / "params.json").read_text())
    assert params == {"model.dim": 64, "model.layers.0": 1, "model.layers.1": 2, "lr": 1e-3,
                      "seed": 3}


def test_flatten_params():
    import attrs

    @attrs.define
    class Opt:
        name: str = "adam"
        betas: tuple = (0.9, 0.99)

    flat = flatten_params({"opt": Opt(), "empty": {}, "none": None, "path": Marker()})
    assert flat == {"opt.name": "adam", "opt.betas.0": 0.9, "opt.betas.1": 0.99, "empty": "{}",
                    "none": None, "path": "marker"}


class Marker:
    def __str__(self) -> str:
        return "marker"
