"""core.musdb on small generated folders in both MUSDB layouts (no download): stems .mp4
(PyAV) and MUSDB18-HQ wav folders; splits, stems, chunks, samples per epoch, bad tracks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_core.audio.stems import read_stems, stem_info, write_stems
from audio_core.data.base import DatasetError
from audio_core.data.musdb import STEMS, VALIDATION_TRACKS
from audio_core.plugins import get_registry

RATE = 44100
SECONDS = 1.5
TRAIN = ["Artist A - One", "Artist B - Two", VALIDATION_TRACKS[0]]
TEST = ["Artist C - Three"]
#: stem k of track j is a sine at FREQS[k] + 7 j Hz (left full, right half amplitude)
FREQS = {"drums": 300.0, "bass": 600.0, "other": 1200.0, "vocals": 2400.0}


def track_audio(j: int) -> np.ndarray:
    """(5, 2, samples): mixture, drums, bass, other, vocals."""
    t = np.arange(int(RATE * SECONDS)) / RATE
    stems = [np.stack([0.2 * np.sin(2 * np.pi * (FREQS[s] + 7 * j) * t),
                       0.1 * np.sin(2 * np.pi * (FREQS[s] + 7 * j) * t)]) for s in STEMS[1:]]
    return np.stack([sum(stems), *stems]).astype(np.float32)


def make_musdb(root: Path, layout: str) -> Path:
    for split, names in (("train", TRAIN), ("test", TEST)):
        for j, name in enumerate(names):
            audio = track_audio(j)
            if layout == "wav":
                for stem, data in zip(STEMS, audio, strict=True):
                    (root / split / name).mkdir(parents=True, exist_ok=True)
                    sf.write(root / split / name / f"{stem}.wav", data.T, RATE)
            else:
                write_stems(root / split / f"{name}.stem.mp4", audio, RATE)
    return root


@pytest.fixture(scope="module", params=["wav", "stems"])
def musdb(request, tmp_path_factory):
    return request.param, make_musdb(tmp_path_factory.mktemp(f"musdb_{request.param}"),
                                     request.param)


def build(root: Path, sample_rate: int = RATE, channels: int = 2, segment: float | None = 0.5,
          **params):
    return get_registry().build("dataset", "core.musdb", {"root": str(root), **params},
                                path="data.train",
                                context={"sample_rate": sample_rate, "channels": channels,
                                         "segment_seconds": segment, "seed": 0})


def dominant_hz(audio: torch.Tensor, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio[0].numpy() * np.hanning(audio.shape[-1])))
    return float(np.argmax(spectrum) * rate / audio.shape[-1])


def test_splits_hold_out_the_validation_tracks(musdb):
    layout, root = musdb
    names = {split: [t.name for t in build(root, split=split).tracks]
             for split in ("train", "valid", "test")}
    assert names == {"train": TRAIN[:2], "valid": [TRAIN[2]], "test": TEST}
    assert build(root).format == layout
    custom = build(root, split="valid", valid_tracks=[TRAIN[1]])
    assert [t.name for t in custom.tracks] == [TRAIN[1]]


def test_items_are_crops_with_the_item_contract(musdb):
    _, root = musdb
    ds = build(root, samples_per_epoch=7)
    assert len(ds) == 7 and ds.units_per_item == ("audio_s", 0.5)
    item = ds[3]
    assert item["audio"].shape == (2, 22050) and item["audio"].dtype == torch.float32
    assert item["mask"].all() and item["length"] == 22050 and item["label"] == -1
    assert item["track"] == TRAIN[3 % 2] and 0 <= item["offset"] <= RATE * SECONDS - 22050
    again = build(root, samples_per_epoch=7)[3]
    torch.testing.assert_close(item["audio"], again["audio"])  # seeded
    ds.set_epoch(1)
    assert ds[3]["offset"] != item["offset"]  # a new crop each epoch


def test_chosen_stems_are_the_right_streams_summed(musdb):
    _, root = musdb
    for stem, hz in FREQS.items():
        audio = build(root, split="test", stems=[stem])[0]["audio"]
        assert dominant_hz(audio, RATE) == pytest.approx(hz, abs=3)
    mix = build(root, split="test")[0]["audio"]
    summed = build(root, split="test", stems=["drums", "bass", "other", "vocals"])[0]["audio"]
    accompaniment = build(root, split="test", stems=["accompaniment"])[0]["audio"]
    vocals = build(root, split="test", stems=["vocals"])[0]["audio"]
    # AAC is lossy and its first frames are a start-up transient: compare after them,
    # by relative error (wav: exact up to float rounding)
    def close(a, b):
        a, b = a[..., 4096:], b[..., 4096:]
        return float((a - b).norm() / b.norm()) < 0.05

    assert close(summed, mix) and close(accompaniment + vocals, mix)
    assert close(mix[1], 0.5 * mix[0])


def test_random_mix_draws_one_stem_per_item(musdb):
    _, root = musdb
    ds = build(root, stems=["drums", "vocals"], mix="random", samples_per_epoch=12)
    found = {round(dominant_hz(ds[i]["audio"], RATE) / 100) for i in range(12)}
    assert found <= {3, 24} and len(found) == 2


def test_resampling_mono_and_chunk_duration(musdb):
    _layout, root = musdb
    ds = build(root, sample_rate=16000, channels=1, split="test", chunk_duration=0.25)
    item = ds[0]
    assert item["audio"].shape == (1, 4000)
    reference = build(root, sample_rate=16000, channels=1, split="test", segment=None)[0]
    assert reference["audio"].shape[-1] == pytest.approx(16000 * SECONDS, abs=400)
    start = item["offset"]  # random_crop is off outside train: consecutive chunks from 0
    assert start == 0
    torch.testing.assert_close(item["audio"], reference["audio"][:, :4000], atol=1e-4, rtol=0)


def test_consecutive_chunks_without_random_crop(musdb):
    _, root = musdb
    ds = build(root, split="train", random_crop=False, samples_per_epoch=4, segment=0.25)
    assert [ds[i]["offset"] for i in range(4)] == [0, 0, 11025, 11025]


def test_whole_tracks_when_unsegmented(musdb):
    _, root = musdb
    ds = build(root, split="train", segment=None, samples_per_epoch=50)
    assert len(ds) == 2 and ds.units_per_item == ("items", 1.0)
    assert ds[0]["audio"].shape[-1] >= int(RATE * SECONDS)


def test_stem_files_round_trip(tmp_path):
    audio = track_audio(0)
    path = write_stems(tmp_path / "x.stem.mp4", audio, RATE)
    info = stem_info(path)
    assert (info.streams, info.channels, info.sample_rate) == (5, 2, RATE)
    full = read_stems(path, [0, 4])
    part = read_stems(path, [0, 4], offset=30000, frames=5000)
    assert part.shape == (2, 2, 5000)
    np.testing.assert_array_equal(part, full[:, :, 30000:35000])  # seeking is exact


def test_bad_tracks_are_reported_and_skipped(tmp_path):
    root = make_musdb(tmp_path / "m", "stems")
    (root / "train" / "Broken - Track.stem.mp4").write_bytes(b"not an mp4 at all")
    ds = build(root)
    assert [t.name for t in ds.tracks] == TRAIN[:2]
    assert any("Broken" in b.path for b in ds.bad_files)
    wav = make_musdb(tmp_path / "w", "wav")
    (wav / "train" / TRAIN[0] / "vocals.wav").unlink()
    ds = build(wav, stems=["vocals"])
    assert [t.name for t in ds.tracks] == [TRAIN[1]]
    assert "missing stem 'vocals'" in ds.bad_files.to_dict()[0]["reason"]


@pytest.mark.parametrize("params, match", [
    ({"split": "validation"}, "split must be one of"),
    ({"stems": ["guitar"]}, "stems\\[\\] must be one of"),
    ({"mix": "mean"}, "mix must be one of"),
    ({"samples_per_epoch": 0}, "samples_per_epoch"),
])
def test_bad_params_are_errors(musdb, params, match):
    _, root = musdb
    with pytest.raises(DatasetError, match=match):
        build(root, **params)


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        build(tmp_path / "nowhere")
