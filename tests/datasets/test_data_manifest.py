"""`core.manifest`: items, labels, captions, crops, regions, bad rows and bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_core.data.folders import FolderDataset
from audio_core.data.manifest import (
    ManifestDataset,
    ManifestError,
    folder_manifest,
    read_manifest,
    write_manifest,
)


def rows_for(tmp_path, tone):
    tone(tmp_path / "clips" / "a.wav", seconds=1.0, freq=300)
    tone(tmp_path / "clips" / "b.wav", seconds=0.5, freq=500, channels=2)
    return [{"path": "clips/a.wav", "duration": 1.0, "sample_rate": 16000, "text": "low",
             "label": "tone"},
            {"path": str(tmp_path / "clips" / "b.wav"), "duration": 0.5,
             "sample_rate": 16000, "channels": 2, "label": "beep"}]


def test_items_labels_captions_and_crops_match_the_folder_dataset(tmp_path, tone):
    manifest = write_manifest(rows_for(tmp_path, tone), tmp_path / "m.jsonl.gz")
    ds = ManifestDataset(manifest, sample_rate=16000, segment_seconds=0.25, seed=3)
    folder = FolderDataset(tmp_path / "clips", sample_rate=16000, segment_seconds=0.25, seed=3)
    assert len(ds) == 2 and ds.classes == ["beep", "tone"]
    for i in range(2):
        item, ref = ds[i], folder[i]
        assert item["audio"].shape == (1, 4000)
        assert item["offset"] == ref["offset"] and item["path"] == ref["path"]
        assert np.array_equal(item["audio"].numpy(), ref["audio"].numpy())
    assert (ds[0]["label"], ds[0]["text"], ds[1]["label"], ds[1]["text"]) == (1, "low", 0, "")
    whole = ManifestDataset(manifest, sample_rate=8000, segment_seconds=None, channels=2)
    assert whole[1]["audio"].shape == (2, 4000) and whole[0]["audio"].shape == (2, 8000)


def test_offset_makes_a_region_and_int_labels_pass_through(tmp_path, tone):
    tone(tmp_path / "a.wav", seconds=1.0)
    write_manifest([{"path": "a.wav", "duration": 0.25, "sample_rate": 16000,
                     "offset": 0.5, "label": 7}], tmp_path / "m.jsonl")
    ds = ManifestDataset(tmp_path / "m.jsonl", sample_rate=16000, segment_seconds=None)
    whole, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    item = ds[0]
    assert item["label"] == 7 and ds.classes == []
    np.testing.assert_array_equal(item["audio"][0].numpy(), whole[8000:12000])
    crop = ManifestDataset(tmp_path / "m.jsonl", sample_rate=16000, segment_seconds=0.1)[0]
    start = 8000 + crop["offset"]
    np.testing.assert_array_equal(crop["audio"][0].numpy(), whole[start:start + 1600])


def test_start_up_never_opens_files_and_bad_files_are_skipped(tmp_path, tone):
    rows = rows_for(tmp_path, tone)
    rows.insert(0, {"path": "missing.wav", "duration": 2.0, "sample_rate": 16000})
    write_manifest(rows, tmp_path / "m.jsonl")
    ds = ManifestDataset(tmp_path / "m.jsonl", sample_rate=16000, segment_seconds=0.25,
                         min_seconds=0.6)
    assert len(ds) == 2  # b.wav is shorter than min_seconds; missing.wav not stat'ed yet
    assert ds[0]["path"].endswith("a.wav")  # the next file stands in for the missing one
    assert [b.path for b in ds.bad_files] == [str(tmp_path / "missing.wav")]
    assert "not found" in ds.bad_files.to_dict()[0]["reason"]


@pytest.mark.parametrize(("line", "message"), [
    ('{"path": "a.wav", "sample_rate": 16000}', "missing 'duration'"),
    ('{"path": "a.wav", "duration": "long", "sample_rate": 16000}', "'duration' must be a nu"),
    ('{"path": "a.wav", "duration": 1, "sample_rate": 16000.5}', "'sample_rate' must be an i"),
    ('{"path": "a.wav", "duration": 1, "sample_rate": 0}', "'sample_rate' must be positive"),
    ('{"path": "", "duration": 1, "sample_rate": 16000}', "'path' must be a non-empty"),
    ('{"path": "a.wav", "duration": 1, "sample_rate": 8, "label": [1]}', "'label' must be"),
    ('{"path": "a.wav", "duration": 1, "sample_rate": 8, "label": 3}', "mixes class names"),
    ('{"path": "a.wav", "duration": 1, "sample_rate": 8, "text": 5}', "'text' must be a str"),
    ('{"path": "a.wav", "duration": 1e-9, "sample_rate": 8}', "shorter than one sample"),
    ('{"path": "a.wav", "duration": 1', "not a JSON object"),
    ('{"path": "a.wav", "duration": 1, "sample_rate": 8, "channels": 0}', "'channels' must be p"),
    ('{"path": "a.wav", "duration": 1, "sample_rate": 8, "offset": -1}', "'offset' must be p"),
    ('["a.wav", 1, 16000]', "expected a JSON object"),
])
def test_bad_rows_name_file_line_and_field(tmp_path, line, message):
    good = json.dumps({"path": "b.wav", "duration": 1, "sample_rate": 8, "label": "x"})
    path = tmp_path / "m.jsonl"
    path.write_text(f"{good}\n\n{line}\n{good}\n")
    with pytest.raises(ManifestError, match=rf"m\.jsonl:3: .*{message}"):
        read_manifest(path)


def test_missing_or_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ManifestError, match="lists no entries"):
        read_manifest(tmp_path / "empty.jsonl")


def test_folder_manifest_round_trip_and_registry(tmp_path, tone):
    for label in ("cat", "dog"):
        tone(tmp_path / "src" / label / f"{label}.wav", seconds=0.5)
    (tmp_path / "src" / "dog" / "broken.wav").write_bytes(b"RIFF" * 10)
    out, n, bad = folder_manifest(tmp_path / "src", tmp_path / "lists" / "m.jsonl.gz",
                                  labels="folders")
    assert n == 2 and [b["path"].rsplit("/", 1)[-1] for b in bad] == ["broken.wav"]
    m = read_manifest(out)
    assert list(m.paths) == ["../src/cat/cat.wav", "../src/dog/dog.wav"]
    assert m.classes == ["cat", "dog"] and list(m.label) == [0, 1]
    assert list(m.frames) == [8000, 8000]

    from audio_core.config import build_dataset, load_config

    cfg = load_config({"data": {"segment_seconds": 0.25, "sample_rate": 16000, "train": {
        "name": "core.manifest", "params": {"path": str(out)}}}})
    ds = build_dataset(cfg)
    assert isinstance(ds, ManifestDataset) and ds[1]["label"] == 1


def test_fixed_classes_and_non_ascii_text(tmp_path):
    rows = [{"path": f"{i}.wav", "duration": 1, "sample_rate": 8000, "label": name,
             "text": text} for i, (name, text) in enumerate(
                 [("dog", "un chien aboie"), ("cat", "été, 猫"), ("dog", "")])]
    write_manifest(rows, tmp_path / "m.jsonl")
    m = read_manifest(tmp_path / "m.jsonl", classes=["bird", "cat", "dog"])
    assert m.classes == ["bird", "cat", "dog"] and list(m.label) == [2, 1, 2]
    assert list(m.text) == ["un chien aboie", "été, 猫", ""]
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: 'label' 'cat' is not one of"):
        read_manifest(tmp_path / "m.jsonl", classes=["dog"])


def test_nulls_are_absent_fields(tmp_path):
    (tmp_path / "m.jsonl").write_text(json.dumps(
        {"path": "a.wav", "duration": 0.5, "sample_rate": 8000, "frames": None,
         "channels": None, "text": None, "label": None, "offset": None}) + "\n")
    m = read_manifest(tmp_path / "m.jsonl")
    assert (list(m.frames), list(m.text), list(m.label), list(m.start)) == (
        [4000], [""], [-1], [0])


def test_batches_from_two_loader_workers_equal_in_process_ones(tmp_path, tone):
    from audio_core.data.loader import make_dataloader

    rows = rows_for(tmp_path, tone) * 3
    write_manifest(rows, tmp_path / "m.jsonl")
    ds = ManifestDataset(tmp_path / "m.jsonl", sample_rate=16000, segment_seconds=0.2)

    def batches(workers):
        loader = make_dataloader(ds, batch_size=2, seed=1, num_workers=workers)
        return [(b["audio"], b["label"], b["text"]) for b in loader]

    for (a, la, ta), (b, lb, tb) in zip(batches(0), batches(2), strict=True):
        assert (a == b).all() and (la == lb).all() and ta == tb
