"""`core.captioned`: audio files with captions from CSV/TSV/JSONL lists."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_core.data.base import DatasetError
from audio_core.data.captioned import CaptionedDataset
from audio_core.data.loader import make_dataloader
from audio_core.plugins import get_registry


def _clips(root, n=3):
    (root / "audio").mkdir()
    for i in range(n):
        sf.write(root / "audio" / f"{i}.wav", (0.1 * np.ones(800 + 100 * i)).astype("float32"),
                 8000)
    return [f"audio/{i}.wav" for i in range(n)]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "tsv"])
def test_captions_reach_the_items(tmp_path, fmt):
    paths = _clips(tmp_path)
    texts = ["a bird chirps", "rain, on a roof", 'a "quoted" dog']
    listing = tmp_path / f"captions.{fmt}"
    if fmt == "jsonl":
        listing.write_text("\n".join(json.dumps({"path": p, "text": t})
                                     for p, t in zip(paths, texts, strict=True)) + "\n")
    else:
        import csv

        with listing.open("w", newline="") as f:
            writer = csv.writer(f, delimiter="\t" if fmt == "tsv" else ",")
            writer.writerow(["path", "text"])
            writer.writerows(zip(paths, texts, strict=True))
    ds = get_registry().build("dataset", "core.captioned", {"captions": str(listing)},
                              context={"sample_rate": 8000, "channels": 1,
                                       "segment_seconds": 0.1, "seed": 0})
    assert isinstance(ds, CaptionedDataset) and len(ds) == 3
    by_name = {ds[i]["path"].rsplit("/", 1)[-1]: ds[i]["text"] for i in range(3)}
    assert by_name == {f"{i}.wav": t for i, t in enumerate(texts)}
    batch = next(iter(make_dataloader(ds, batch_size=3, seed=0, shuffle=False)))
    assert sorted(batch["text"]) == sorted(texts) and batch["audio"].shape == (3, 1, 800)


def test_bad_caption_lists_are_named(tmp_path):
    _clips(tmp_path, 1)
    ctx = {"sample_rate": 8000, "channels": 1, "segment_seconds": 0.1}
    (tmp_path / "no_text.csv").write_text("path,caption\naudio/0.wav,x\n")
    with pytest.raises(DatasetError, match="entry 1 has no 'text'"):
        CaptionedDataset(tmp_path / "no_text.csv", **ctx)
    (tmp_path / "bad.jsonl").write_text('{"path": "audio/0.wav", "text": "x"}\nnot json\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2"):
        CaptionedDataset(tmp_path / "bad.jsonl", **ctx)
    with pytest.raises(DatasetError, match=r"must be \.csv"):
        (tmp_path / "x.txt").write_text("")
        CaptionedDataset(tmp_path / "x.txt", **ctx)
    with pytest.raises(DatasetError, match="does not exist"):
        CaptionedDataset(tmp_path / "missing.csv", **ctx)
    (tmp_path / "custom.csv").write_text("file,desc\naudio/0.wav,hello\n")
    ds = CaptionedDataset(tmp_path / "custom.csv", path_column="file", text_column="desc", **ctx)
    assert ds[0]["text"] == "hello"


def test_two_captions_for_one_file_are_an_error_naming_both_entries(tmp_path):
    _clips(tmp_path, 2)
    ctx = {"sample_rate": 8000, "channels": 1, "segment_seconds": 0.1}
    (tmp_path / "dup.csv").write_text("path,text\naudio/0.wav,a dog\naudio/1.wav,rain\n"
                                      "./audio/0.wav,a cat\n")
    with pytest.raises(DatasetError, match=r"dup\.csv: entries 1 and 3 caption the same "
                                           r"audio file \('path'\)"):
        CaptionedDataset(tmp_path / "dup.csv", **ctx)
