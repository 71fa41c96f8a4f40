"""An untrained continuous autoencoder export and a small folder of audio for latents tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

RATE = 8000


def write_export(root: Path, name: str = "model", *, seed: int = 0) -> Path:
    from audio_core.config import load_config
    from audio_core.engine.export import save_export
    from audio_core.models.build import build_model
    from audio_core.plugins import get_registry

    conv = {"dim": 3, "width": 2, "ratios": [2, 4]}
    cfg = load_config({"run": {"name": name, "seed": seed},
                       "data": {"sample_rate": RATE, "channels": 1},
                       "model": {"encoder": {"name": "core.conv", "params": conv},
                                 "decoder": {"name": "core.conv", "params": conv},
                                 "losses": [{"name": "core.l1"}]}})
    torch.manual_seed(seed)
    model = build_model(cfg, get_registry())
    out = root / name
    out.mkdir(parents=True)
    save_export(model, cfg, out)
    return out


def write_clips(root: Path, classes: dict[str, list[float]]) -> Path:
    """``root/<class>/<i>.wav`` sines of the given durations (seconds)."""
    rng = np.random.default_rng(0)
    for label, durations in classes.items():
        (root / label).mkdir(parents=True)
        for i, seconds in enumerate(durations):
            t = np.arange(int(seconds * RATE)) / RATE
            wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 900) * t)
            sf.write(root / label / f"{i}.wav", wave.astype(np.float32), RATE)
    return root


@pytest.fixture(scope="module")
def latents_workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("latents")
    clips = write_clips(root / "clips", {"cat": [0.3, 0.51, 0.2], "dog": [0.41, 0.6]})
    return {"root": root, "model": write_export(root), "other": write_export(root, "other",
                                                                              seed=1),
            "clips": clips}
