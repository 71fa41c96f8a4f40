"""TensorBoard backend: event files readable with EventAccumulator (scalars, audio, text)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from audio_core.tracking import TrackingError
from audio_core.tracking.tensorboard_backend import TensorBoardTracker


def test_scalars_audio_images_params_read_back(tmp_path):
    with TensorBoardTracker(tmp_path / "tb") as tracker:
        for step in range(3):
            tracker.log_metrics({"train/loss": 1.0 / (step + 1), "lr": torch.tensor(0.1)}, step)
        tracker.log_audio("val/sample", 0.3 * torch.randn(2, 800), 8000, step=2)
        tracker.log_image("spec", np.random.rand(6, 7), step=2)
        tracker.log_params({"model": {"dim": 8}})
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"audio": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"train/loss", "lr"}
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [0, 1, 2]
    assert [e.value for e in loss] == pytest.approx([1.0, 0.5, 1 / 3])
    (audio,) = acc.Audio("val/sample")
    assert audio.step == 2 and audio.sample_rate == 8000 and audio.length_frames == 800
    assert audio.encoded_audio_string[:4] == b"RIFF"
    assert acc.Images("spec")[0].width == 7
    assert "params/text_summary" in tags["tensors"]


def test_missing_tensorboard_is_a_clear_error(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(TrackingError, match=r"'tensorboard'.*pip install tensorboard"):
        TensorBoardTracker(tmp_path)
