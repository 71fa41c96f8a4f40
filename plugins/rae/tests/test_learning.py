"""On real audio (the repository's speech and music clips), the decoder of a tiny
random-init wav2vec2 RAE learns within a minute of CPU training: a held-out clip
reconstructs far closer than with the untrained decoder (``--compare-untrained``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import PLUGIN

from audio_core.config import load_config
from audio_core.inference.reconstruct import reconstruct_file

CLIPS = Path(__file__).resolve().parents[3] / "tests" / "data" / "clips"
HELD_OUT = CLIPS / "speech" / "de_16k.flac"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from audio_core.engine.trainer import Trainer
    from audio_core.models.loading import load

    if not HELD_OUT.is_file():
        pytest.fail(f"the real clips are missing at {CLIPS}", pytrace=False)
    out = tmp_path_factory.mktemp("learn")
    train = out / "train"
    train.mkdir()
    for clip in sorted(CLIPS.rglob("*.*")):
        if clip != HELD_OUT:
            (train / f"{clip.parent.name}_{clip.name}").symlink_to(clip)
    registry = PLUGIN.load().registry
    cfg = load_config("rae.wav2vec2_tiny", [
        f"run.output_dir={out}", "data.train.name=core.folder",
        f"data.train.params.root={train}", "data.val=null", "data.batch_size=4",
        "train.max_steps=80", "train.checkpoint_every=80", "train.log_every=20",
        "train.trackers=[jsonl]", "train.optimizer.lr=2e-3"], registry=registry,
        check_params=True)
    trainer = Trainer(cfg, registry=registry)
    trainer.fit()
    run = out / cfg.run.name
    return trainer.task.model.eval(), load(run, untrained=True, registry=registry), out


def test_the_decoder_learns_on_real_audio(trained):
    model, untrained, out = trained
    torch.manual_seed(0)
    metrics = reconstruct_file(model, HELD_OUT, out / "recon.wav", baseline=untrained)
    assert metrics["mel_distance"] < 0.7 * metrics["baseline"]["mel_distance"], metrics
    assert metrics["l1"] < 0.5 * metrics["baseline"]["l1"], metrics
    assert (out / "recon.png").is_file() and (out / "recon.json").is_file()
