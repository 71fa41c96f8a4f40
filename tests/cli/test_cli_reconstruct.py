"""Chunked processing and `audio-core reconstruct` on an exported model."""

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_core.cli import main
from audio_core.inference.chunking import chunk_starts, process_in_chunks


@pytest.mark.parametrize(("length", "chunk", "overlap"), [(100, 30, 10), (95, 30, 0), (20, 30, 5)])
def test_chunks_cover_the_signal(length, chunk, overlap):
    starts = chunk_starts(length, chunk, overlap)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + chunk] = True
    assert covered.all() and starts[0] == 0
    assert all(b - a <= chunk - overlap for a, b in itertools.pairwise(starts))


def test_crossfaded_chunks_reproduce_a_pointwise_model_exactly():
    audio = torch.randn(2, 1000)
    out = process_in_chunks(audio, lambda x: 0.5 * x, chunk=128, overlap=32)
    assert out.shape == audio.shape
    torch.testing.assert_close(out, 0.5 * audio)


def test_chunk_must_exceed_overlap():
    with pytest.raises(ValueError, match="longer than its overlap"):
        chunk_starts(100, 10, 10)


@pytest.mark.slow
def test_reconstruct_writes_audio_report_and_plot(tmp_path, monkeypatch):
    from audio_core import distributed
    from audio_core.config import load_config
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer

    monkeypatch.chdir(tmp_path)
    cfg = load_config("tiny_autoencoder", ["train.max_steps=2", "train.val_every=0",
                                           "train.trackers=[jsonl]", "data.batch_size=2",
                                           "run.output_dir=runs"])
    saved = dict(os.environ)
    try:  # an in-process run starts a 1-rank process group and sets RANK etc.
        Trainer(cfg).fit()
    finally:
        distributed.teardown()
        os.environ.clear()
        os.environ.update(saved)
    export_run("runs/tiny_autoencoder", "exported")
    clip = Path(__file__).resolve().parents[1] / "data" / "clips" / "speech" / "en_22k.wav"
    assert main(["reconstruct", "exported", str(clip), "out.wav", "--chunk-seconds", "1",
                 "--compare-untrained"]) == 0
    audio, sr = sf.read("out.wav")
    assert sr == 16000 and abs(len(audio) - 2.5 * 16000) <= 1
    report = json.loads(Path("out.json").read_text())
    assert {"si_sdr", "mel_distance", "l1"} <= set(report)
    assert {"si_sdr", "mel_distance", "l1"} <= set(report["baseline"])  # the untrained model
    assert report["baseline"]["mel_distance"] != report["mel_distance"]
    assert Path("out.png").stat().st_size > 10_000


def test_a_model_with_its_own_reconstruct_method_is_used_through_it():
    """Models whose forward is not waveform -> record (e.g. spectrogram tokenizers) qualify
    through ``reconstruct(waveform)``; chunks go through it too."""
    from omegaconf import OmegaConf

    from audio_core.inference.reconstruct import reconstruct

    class HalfVolume(torch.nn.Module):
        config = OmegaConf.create({"data": {"sample_rate": 100, "channels": 1}})
        sample_rate, channels = 100, 1

        def forward(self, mel):
            raise AssertionError("forward takes mels, not waveforms")

        def reconstruct(self, waveform):
            assert waveform.ndim == 3
            return waveform * 0.5

    audio = torch.randn(1, 1000)
    out = reconstruct(HalfVolume(), audio, chunk_seconds=3.0, show_progress=False)
    torch.testing.assert_close(out, audio * 0.5)
