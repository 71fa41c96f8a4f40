"""Speech corpora: LibriSpeech layout with transcripts, Common Voice clips + TSV."""

from __future__ import annotations

import pytest
import torch

import audio_core
from audio_core.data.base import DatasetError
from audio_core.data.loader import collate
from audio_core.data.speech import CommonVoiceDataset, LibriSpeechDataset

TSV_HEADER = "client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale\n"


@pytest.fixture
def librispeech(tmp_path, tone):
    """LibriSpeech/{dev-clean,train-clean-100}/<speaker>/<chapter>/ with 5 utterances."""
    root = tmp_path / "LibriSpeech"
    layout = {"dev-clean": {("84", "121123"): 2}, "train-clean-100": {("19", "198"): 2,
                                                                        ("26", "495"): 1}}
    for subset, chapters in layout.items():
        for (spk, chap), n in chapters.items():
            folder = root / subset / spk / chap
            lines = []
            for u in range(n):
                uid = f"{spk}-{chap}-{u:04d}"
                tone(folder / f"{uid}.flac", seconds=0.4 + 0.1 * u, freq=200 + 50 * u,
                     subtype="PCM_16")
                lines.append(f"{uid} HELLO WORLD NUMBER {u}")
            (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def test_librispeech_items_carry_text_and_speaker(librispeech):
    ds = LibriSpeechDataset(librispeech, sample_rate=16000, segment_seconds=0.5)
    assert len(ds) == 5 and ds.subsets == ["dev-clean", "train-clean-100"]
    assert ds.speakers == ["19", "26", "84"]
    items = [ds[i] for i in range(len(ds))]
    for item in items:
        assert item["audio"].shape == (1, 8000)
        spk, _chapter, utt = item["path"].rsplit("/", 1)[1].removesuffix(".flac").split("-")
        assert item["speaker"] == spk and item["label"] == ds.speakers.index(spk)
        assert item["text"] == f"HELLO WORLD NUMBER {int(utt)}"
    short = next(it for it in items if it["path"].endswith("84-121123-0000.flac"))
    assert short["length"] == 6400 and not short["mask"][6400:].any()  # 0.4 s padded
    batch = collate(items[:3])
    assert batch["text"] == [it["text"] for it in items[:3]]
    assert batch["speaker"] == [it["speaker"] for it in items[:3]]
    assert batch["label"].tolist() == [it["label"] for it in items[:3]]


@pytest.mark.parametrize("where", ["corpus", "parent", "subset"])
def test_librispeech_root_and_subsets(librispeech, where):
    root = {"corpus": librispeech, "parent": librispeech.parent,
            "subset": librispeech / "train-clean-100"}[where]
    subsets = ["train-clean-100"] if where != "subset" else None
    ds = LibriSpeechDataset(root, subsets, sample_rate=16000, segment_seconds=0.5)
    assert len(ds) == 3 and ds.speakers == ["19", "26"]


def test_librispeech_errors_and_missing_transcripts(librispeech, tone, caplog):
    with pytest.raises(DatasetError, match=r"train-other-500.*subsets found: dev-clean, "
                                           r"train-clean-100"):
        LibriSpeechDataset(librispeech, ["train-other-500"], sample_rate=16000)
    tone(librispeech / "dev-clean" / "84" / "121123" / "84-121123-0009.flac", seconds=0.5)
    (librispeech / "dev-clean" / "84" / "121123" / "84-121123-0008.flac").write_bytes(b"junk")
    ds = LibriSpeechDataset(librispeech, "dev-clean", sample_rate=16000, segment_seconds=0.5)
    assert len(ds) == 3 and len(ds.bad_files) == 1
    texts = {it["path"].rsplit("/", 1)[1]: it["text"] for it in (ds[i] for i in range(3))}
    assert texts["84-121123-0009.flac"] == ""
    assert "no transcript line" in caplog.text


@pytest.fixture
def common_voice(tmp_path, tone):
    root = tmp_path / "cv-corpus" / "en"
    rows = {"train": [("spk_a", "a1.wav", "First sentence.", 2, 0),
                      ("spk_b", "b1.wav", "Second one.", 3, 1),
                      ("spk_a", "a2.wav", "Third, with a \"quote\".", 1, 5),
                      ("spk_c", "missing.mp3", "Not on disk.", 2, 0)],
            "dev": [("spk_d", "d1.wav", "Dev sentence.", 2, 0)]}
    for split, entries in rows.items():
        lines = [TSV_HEADER]
        for client, path, sentence, up, down in entries:
            if path != "missing.mp3":
                tone(root / "clips" / path, seconds=0.3, sr=48000, freq=300)
            lines.append(f"{client}\t{path}\t{sentence}\t{up}\t{down}\t\t\t\ten\n")
        (root / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
    return root


def test_common_voice_split_text_speakers_and_missing_clips(common_voice):
    ds = CommonVoiceDataset(common_voice, "train", sample_rate=16000, segment_seconds=0.5)
    assert len(ds) == 3 and ds.speakers == ["spk_a", "spk_b"]
    assert [b.path.rsplit("/", 1)[1] for b in ds.bad_files] == ["missing.mp3"]
    items = {ds[i]["path"].rsplit("/", 1)[1]: ds[i] for i in range(len(ds))}
    assert items["a2.wav"]["text"] == 'Third, with a "quote".'
    assert items["b1.wav"]["speaker"] == "spk_b" and items["b1.wav"]["label"] == 1
    assert items["a1.wav"]["audio"].shape == (1, 8000) and items["a1.wav"]["length"] == 4800
    assert ds.random_crop and not CommonVoiceDataset(common_voice, "dev",
                                                     sample_rate=16000).random_crop
    voted = CommonVoiceDataset(common_voice, "train", max_down_votes=1, sample_rate=16000)
    assert sorted(u.path.rsplit("/", 1)[1] for u in voted.utterances) == ["a1.wav", "b1.wav"]


def test_common_voice_unknown_split(common_voice):
    with pytest.raises(DatasetError, match=r"split 'test' not found.*dev, train"):
        CommonVoiceDataset(common_voice, "test", sample_rate=16000)


def test_registered_as_core_datasets(librispeech, common_voice):
    registry = audio_core.get_registry()
    ctx = {"sample_rate": 16000, "channels": 1, "segment_seconds": 0.25, "seed": 0}
    ls = registry.build("dataset", "core.librispeech", {"root": str(librispeech)}, context=ctx)
    cv = registry.build("dataset", "core.common_voice", {"root": str(common_voice)}, context=ctx)
    assert len(ls) == 5 and len(cv) == 3
    assert ls[0]["audio"].shape == cv[0]["audio"].shape == (1, 4000)
    assert isinstance(ls[0]["audio"], torch.Tensor)
