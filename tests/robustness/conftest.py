"""Fixtures of the robustness tests: one small trained codec run shared by the session.

``trained_run`` trains a tiny conv autoencoder with a 2 x 16-code residual VQ (a discrete
codec, so encode/decode work) for 4 steps on a folder of short tones that also holds one
corrupt file, with checkpoints at steps 2 and 4 and EMA on. Tests copy it (``copy_run``)
before changing anything. ``cli`` runs ``audio-core`` in this process and undoes what an
in-process run leaves behind (the process group, launcher variables).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import yaml

RATE = 8000

CONFIG: dict[str, Any] = {  # complete in itself (no extends:)
    "run": {"name": "codec", "seed": 0},
    "data": {"sample_rate": RATE, "segment_seconds": 0.25, "batch_size": 2, "val": None},
    "model": {
        "encoder": {"name": "core.conv", "params": {"dim": 8, "width": 4, "ratios": [4, 4]}},
        "quantizer": {"name": "core.rvq",
                      "params": {"dim": 8, "num_codebooks": 2, "codebook_size": 16}},
        "decoder": {"name": "core.conv", "params": {"dim": 8, "width": 4, "ratios": [4, 4]}},
        "losses": [{"name": "core.l1", "weight": 1.0}],
    },
    "task": {"name": "core.autoencoder"},
    "train": {"max_steps": 4, "checkpoint_every": 2, "keep_checkpoints": 3, "log_every": 1,
              "val_every": 0, "ema_decay": 0.9, "trackers": ["jsonl"],
              "optimizer": {"lr": 1e-3}},
}


def write_tones(folder: Path, count: int = 6, seconds: float = 0.4) -> Path:
    """``count`` mono tones of ``seconds`` at 8 kHz, plus ``broken.wav`` (not audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    for i in range(count):
        sf.write(folder / f"tone_{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t))
                 .astype(np.float32), RATE)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x01\x00\x00this is not audio" * 8)
    return folder


def write_config(folder: Path, data_root: Path, **train: Any) -> Path:
    data = yaml.safe_load(yaml.safe_dump(CONFIG))
    data["data"]["train"] = {"name": "core.folder", "params": {"root": str(data_root)}}
    data["run"]["output_dir"] = str(folder)
    data["train"].update(train)
    path = folder / "codec.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_cli(argv: list[str]) -> int:
    """``audio-core ARGV`` in this process; tears down the process group it may start."""
    from audio_core import distributed
    from audio_core.cli import main

    saved = dict(os.environ)
    try:
        return main([str(a) for a in argv])
    finally:
        distributed.teardown()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, deepspeed_ops) -> Path:
    """The run folder of the shared 4-step codec run (do not modify: copy it)."""
    root = tmp_path_factory.mktemp("robust_run")
    config = write_config(root, write_tones(root / "data"))
    assert run_cli(["train", config]) == 0
    return root / "codec"


@pytest.fixture
def copy_run(trained_run, tmp_path) -> Callable[[str], Path]:
    """``copy_run(name)``: a private copy of the shared run under ``tmp_path``."""

    def copy(name: str = "run") -> Path:
        target = tmp_path / name
        shutil.copytree(trained_run, target, symlinks=True)
        return target

    return copy


@pytest.fixture
def cli() -> Callable[[list[Any]], int]:
    return run_cli


@pytest.fixture
def exported(trained_run, tmp_path_factory) -> Path:
    """An export of the shared run (a fresh folder per test)."""
    from audio_core.engine.export import export_run

    return export_run(trained_run, tmp_path_factory.mktemp("export") / "model")


@pytest.fixture
def helpers():
    """The module-level helpers, for test files (they cannot import this conftest)."""
    import types

    return types.SimpleNamespace(CONFIG=CONFIG, RATE=RATE, write_tones=write_tones,
                                 write_config=write_config, run_cli=run_cli)
