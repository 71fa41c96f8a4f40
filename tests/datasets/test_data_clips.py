"""The committed real clips (espeak-ng speech, fluidsynth music) through the datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio_core.audio.io import audio_info, load_audio
from audio_core.data.folders import ClassFolderDataset, FolderDataset
from audio_core.data.inspect import inspect_path
from audio_core.data.loader import make_dataloader

CLIPS = Path(__file__).resolve().parent.parent / "data" / "clips"
pytestmark = pytest.mark.skipif(not CLIPS.is_dir(), reason="tests/data/clips missing")


def test_clips_are_real_and_varied():
    infos = [audio_info(p) for p in sorted(CLIPS.rglob("*.*"))]
    assert len(infos) == 6
    assert {i.sample_rate for i in infos} >= {16000, 22050, 44100}
    assert {i.channels for i in infos} == {1, 2}
    assert {i.format for i in infos} == {"WAV", "FLAC", "OGG"}
    for info in infos:
        audio, _ = load_audio(info.path)
        assert 0.5 < audio.abs().max() <= 1.0 and audio.std() > 0.02


@pytest.mark.parametrize(("sr", "ch"), [(16000, 1), (24000, 2)])
def test_clips_as_class_folder(sr, ch):
    ds = ClassFolderDataset(CLIPS, sample_rate=sr, channels=ch, segment_seconds=2.4, seed=0)
    assert ds.classes == ["music", "speech"] and len(ds) == 6 and not ds.bad_files
    batches = list(make_dataloader(ds, batch_size=3, seed=0))
    assert len(batches) == 2
    for b in batches:
        assert b["audio"].shape == (3, ch, int(2.4 * sr))
        assert b["length"].tolist() == b["mask"].sum(1).tolist()
        for path, label in zip(b["path"], b["label"].tolist(), strict=True):
            assert ds.classes[label] in path
    lengths = {p.rsplit("/", 1)[-1]: n for b in batches
               for p, n in zip(b["path"], b["length"].tolist(), strict=True)}
    assert lengths["fr_44k.ogg"] < int(2.4 * sr)  # the 2.08 s clip is padded and masked


def test_clips_inspect_and_folder():
    report = inspect_path(CLIPS)
    assert len(report.files) == 6 and not report.bad_files
    assert report.total_seconds == pytest.approx(14.58, abs=0.1)
    ds = FolderDataset(CLIPS / "speech", sample_rate=16000, segment_seconds=1.0)
    assert len(ds) == 3 and all(ds[i]["label"] == -1 for i in range(3))
