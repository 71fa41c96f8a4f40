"""Folder datasets: shapes, masks, resampling, channels, crops, labels, splits, errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

import audio_core
from audio_core.audio.io import load_audio
from audio_core.data.base import DatasetError
from audio_core.data.folders import ClassFolderDataset, FolderDataset, SplitFolderDataset
from audio_core.data.loader import collate

KEYS = {"audio", "mask", "label", "path", "offset", "length", "seconds_start", "seconds_total"}


@pytest.fixture
def mixed(tmp_path, tone):
    """Files at 16k/22.05k/44.1k, mono and stereo, 1.5 s each."""
    root = tmp_path / "mixed"
    for sr, ch in [(16000, 1), (22050, 2), (44100, 1), (44100, 2)]:
        tone(root / f"sub{ch}" / f"t_{sr}_{ch}.wav", seconds=1.5, sr=sr, channels=ch,
             freq=sr / 100)
    return root


@pytest.mark.parametrize(("sr", "ch"), [(16000, 1), (24000, 2)])
def test_mixed_rates_and_channels(mixed, sr, ch):
    ds = FolderDataset(mixed, sample_rate=sr, channels=ch, segment_seconds=1.0, seed=0)
    assert len(ds) == 4 and not ds.bad_files
    for i in range(len(ds)):
        item = ds[i]
        assert item.keys() == KEYS
        assert item["audio"].shape == (ch, sr) and item["audio"].dtype == torch.float32
        assert item["mask"].shape == (sr,) and item["mask"].dtype == torch.bool
        assert item["mask"].all() and item["length"] == sr and item["label"] == -1
        assert 0 <= item["offset"] <= sr // 2
        # the crop is the file resampled to the model rate, starting at `offset`
        full, _ = load_audio(item["path"], sample_rate=sr, channels=ch)
        ref = full[:, item["offset"]: item["offset"] + sr]
        torch.testing.assert_close(item["audio"], ref, atol=1e-5, rtol=0)


def test_short_file_is_padded_and_masked(tmp_path, tone):
    tone(tmp_path / "d" / "short.wav", seconds=0.3, sr=22050, channels=2)
    ds = FolderDataset(tmp_path / "d", sample_rate=16000, channels=1, segment_seconds=1.0)
    item = ds[0]
    assert item["audio"].shape == (1, 16000) and item["offset"] == 0
    assert item["length"] == 4800 == int(item["mask"].sum())
    assert item["mask"][:4800].all() and not item["mask"][4800:].any()
    assert item["audio"][:, 4800:].abs().max() == 0
    assert item["audio"][:, :4800].abs().max() > 0.1


def test_whole_files_and_padding_collate(tmp_path, tone):
    tone(tmp_path / "d" / "a.wav", seconds=0.5)
    tone(tmp_path / "d" / "b.wav", seconds=0.25)
    ds = FolderDataset(tmp_path / "d", sample_rate=16000, segment_seconds=None)
    batch = collate([ds[0], ds[1]])
    assert batch["audio"].shape == (2, 1, 8000)
    assert batch["length"].tolist() == [8000, 4000]
    assert batch["mask"].sum(1).tolist() == [8000, 4000]
    assert batch["label"].dtype == torch.int64 and len(batch["path"]) == 2


def test_crops_are_deterministic_per_seed_epoch_rank(tmp_path, tone):
    for i in range(4):
        tone(tmp_path / "d" / f"{i}.wav", seconds=10.0, sr=8000, freq=200 + 50 * i)

    def offsets(seed=0, epoch=0, rank=0):
        ds = FolderDataset(tmp_path / "d", sample_rate=8000, segment_seconds=0.5, seed=seed)
        ds.set_rank(rank)
        ds.set_epoch(epoch)
        return [ds[i]["offset"] for i in range(len(ds))]

    base = offsets()
    assert base == offsets()  # same seed: identical
    a, b = (FolderDataset(tmp_path / "d", sample_rate=8000, segment_seconds=0.5, seed=0)
            for _ in range(2))
    torch.testing.assert_close(a[2]["audio"], b[2]["audio"], rtol=0, atol=0)
    assert base != offsets(seed=1)
    assert base != offsets(epoch=1)
    assert base != offsets(rank=1)
    no_crop = FolderDataset(tmp_path / "d", sample_rate=8000, segment_seconds=0.5,
                            random_crop=False)
    assert [no_crop[i]["offset"] for i in range(4)] == [0] * 4


def test_default_collate_and_dataloader(mixed):
    ds = FolderDataset(mixed, sample_rate=16000, channels=1, segment_seconds=0.5)
    batch = next(iter(DataLoader(ds, batch_size=4)))  # torch's default collate
    assert batch["audio"].shape == (4, 1, 8000) and batch["mask"].shape == (4, 8000)
    assert batch["label"].tolist() == [-1] * 4


def test_class_folders(tmp_path, tone):
    for cls, n in [("dog", 2), ("cat", 1), ("bird", 3)]:
        for i in range(n):
            tone(tmp_path / "c" / cls / "nested" / f"{i}.flac", seconds=0.2)
    ds = ClassFolderDataset(tmp_path / "c", sample_rate=16000, segment_seconds=0.1)
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.class_to_index == {"bird": 0, "cat": 1, "dog": 2}
    labels = {ds[i]["path"].split("/")[-3]: ds[i]["label"] for i in range(len(ds))}
    assert labels == ds.class_to_index and len(ds) == 6
    with pytest.raises(DatasetError, match="no sub-folders"):
        ClassFolderDataset(tmp_path / "c" / "cat" / "nested", sample_rate=16000)


def test_split_folders(tmp_path, tone):
    root = tmp_path / "s"
    for split, n in [("train", 3), ("val", 2), ("test", 1)]:
        for i in range(n):
            tone(root / split / f"{i}.wav", seconds=2.0)
    train = SplitFolderDataset(root, "train", sample_rate=16000, segment_seconds=0.5)
    val = SplitFolderDataset(root, "val", sample_rate=16000, segment_seconds=0.5)
    assert (len(train), len(val), train.split, train.classes) == (3, 2, "train", [])
    assert val.random_crop is False and train.random_crop is True
    assert all(val[i]["offset"] == 0 and val[i]["label"] == -1 for i in range(2))
    with pytest.raises(DatasetError, match=r"split 'dev' not found.*test, train, val"):
        SplitFolderDataset(root, "dev", sample_rate=16000)


def test_split_folders_with_classes(tmp_path, tone):
    root = tmp_path / "s"
    tone(root / "train" / "b" / "0.wav", seconds=0.2)
    tone(root / "train" / "a" / "0.wav", seconds=0.2)
    tone(root / "val" / "c" / "0.wav", seconds=0.2)  # a class only val has
    tone(root / "val" / "b" / "1.wav", seconds=0.2)
    val = SplitFolderDataset(root, "val", sample_rate=16000, segment_seconds=0.1)
    train = SplitFolderDataset(root, "train", sample_rate=16000, segment_seconds=0.1)
    assert train.classes == val.classes == ["a", "b", "c"]
    assert sorted(val[i]["label"] for i in range(2)) == [1, 2]
    assert sorted(train[i]["label"] for i in range(2)) == [0, 1]


def test_clear_errors(tmp_path, tone):
    with pytest.raises(DatasetError, match=r"dataset root '.*nope' does not exist"):
        FolderDataset(tmp_path / "nope", sample_rate=16000)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DatasetError, match=r"no audio files \(.wav.*under '.*empty'"):
        FolderDataset(tmp_path / "empty", sample_rate=16000)
    f = tone(tmp_path / "x.wav")
    with pytest.raises(DatasetError, match="is not a folder"):
        FolderDataset(f, sample_rate=16000)
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match="splits found: \\(none\\)"):
        SplitFolderDataset(tmp_path / "flat", sample_rate=16000)


def test_filters_and_incompatible_channels(tmp_path, tone):
    tone(tmp_path / "d" / "long.wav", seconds=1.0)
    tone(tmp_path / "d" / "tiny.wav", seconds=0.05)
    tone(tmp_path / "d" / "six.wav", seconds=1.0, channels=6)
    tone(tmp_path / "d" / ".hidden.wav", seconds=1.0)
    tone(tmp_path / "d" / "UPPER.WAV", seconds=1.0)
    ds = FolderDataset(tmp_path / "d", sample_rate=16000, channels=2, min_seconds=0.1)
    names = sorted(p.split("/")[-1] for p in (f.path for f in ds.files))
    assert names == ["UPPER.WAV", "long.wav"]
    assert [b.path.split("/")[-1] for b in ds.bad_files] == ["six.wav"]
    assert "6 channels" in next(iter(ds.bad_files)).reason
    assert ds.files[0].channels == 1 and ds[0]["audio"].shape == (2, 16000)  # mono repeated


def test_built_through_registry(mixed):
    reg = audio_core.get_registry()
    ctx = {"sample_rate": 16000, "channels": 1, "segment_seconds": 0.25, "seed": 3}
    ds = reg.build("dataset", "core.folder", {"root": str(mixed)}, context=ctx)
    assert isinstance(ds, FolderDataset) and ds.seed == 3 and ds.segment_samples == 4000
    syn = reg.build("dataset", "core.synthetic", {"num_items": 8}, context=ctx)
    assert len(syn) == 8 and syn[0]["audio"].shape == (1, 4000)
