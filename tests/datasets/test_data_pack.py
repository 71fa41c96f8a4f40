"""`audio_core.data.pack`: shards from folders, caption lists and manifests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_core.data.manifest import write_manifest
from audio_core.data.pack import PackError, PackOptions, pack, parse_size, verify_shards
from audio_core.data.pack_plan import sample_key
from audio_core.data.shards.format import ShardMembers, index_name, parse_index


def write_tone(path: Path, *, seconds: float = 1.0, sr: int = 16000, channels: int = 1,
               freq: float = 440.0) -> Path:
    t = np.arange(round(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * (freq + 50 * t) * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([x * (1 - 0.3 * c) for c in range(channels)], 1), sr)
    return path


def class_folder(root: Path) -> Path:
    for c, label in enumerate(("cat", "dog")):
        for i in range(3):
            write_tone(root / label / f"{label}.{i}.wav", seconds=0.3 + 0.4 * i,
                       freq=300 + 100 * c + 20 * i)
    return root


def members(out: Path, shard: str) -> ShardMembers:
    return ShardMembers.from_json((out / index_name(shard)).read_text(), shard)


def test_folder_with_labels_reads_with_webdataset_and_offsets(tmp_path):
    wds = pytest.importorskip("webdataset")
    src = class_folder(tmp_path / "src")
    result = pack(src, tmp_path / "out", PackOptions(labels="folders"))
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    parse_index(index, "index.json")
    assert index["samples"] == 6 and index["classes"] == ["cat", "dog"]
    assert index["sample_rate"] == 16000 and index["content"] == "audio"
    assert index["seconds"] == pytest.approx(2 * (0.3 + 0.7 + 1.1))
    assert result.bad_files == [] and len(index["shards"]) == 1

    tar = tmp_path / "out" / index["shards"][0]["name"]
    got = {}
    for sample in wds.WebDataset(str(tar), shardshuffle=False):
        meta = json.loads(sample["json"])
        audio, sr = sf.read(io.BytesIO(sample["flac"]))
        got[meta["source"]] = (meta, audio, sr)
    assert len(got) == 6
    meta, audio, sr = got["dog/dog.2.wav"]
    original, _ = sf.read(src / "dog/dog.2.wav")
    np.testing.assert_allclose(audio, original, atol=1e-4)
    assert (meta["label"], meta["class"], meta["sample_rate"], meta["channels"]) == (
        1, "dog", 16000, 1)
    assert meta["frames"] == len(original) and meta["duration"] == pytest.approx(1.1)
    assert "." not in meta["key"] and "/" not in meta["key"]

    m, data = members(tmp_path / "out", tar.name), tar.read_bytes()
    with tarfile.open(tar) as t:
        by_name = {i.name: t.extractfile(i).read() for i in t.getmembers()}
    for key, ext, offset, size in zip(m.keys, m.ext, m.offset, m.size, strict=True):
        assert data[offset:offset + size] == by_name[f"{key}.{ext}"]


def test_resample_and_channels(tmp_path):
    write_tone(tmp_path / "src" / "a.wav", seconds=0.5, sr=22050, channels=2)
    pack(tmp_path / "src", tmp_path / "out",
         PackOptions(format="wav", sample_rate=16000, channels=1))
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    m = members(tmp_path / "out", index["shards"][0]["name"])
    assert (m.sample_rate, m.channels, m.ext) == ([16000], [1], ["wav"])
    assert m.frames == [round(11025 * 16000 / 22050)] and index["sample_rate"] == 16000
    payload = (tmp_path / "out" / index["shards"][0]["name"]).read_bytes()
    audio, sr = sf.read(io.BytesIO(payload[m.offset[0]:m.offset[0] + m.size[0]]))
    assert sr == 16000 and audio.ndim == 1 and len(audio) == m.frames[0]


def test_buckets_keep_one_bucket_per_shard(tmp_path):
    src = class_folder(tmp_path / "src")  # durations 0.3, 0.7, 1.1 (x2)
    pack(src, tmp_path / "out", PackOptions(buckets=(0.5, 1.0)))
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    buckets = [tuple(s["bucket"]) for s in index["shards"]]
    assert buckets == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.1)]
    for shard, (lo, hi) in zip(index["shards"], buckets, strict=True):
        m = members(tmp_path / "out", shard["name"])
        assert len(m) == 2 and all(lo <= f / 16000 <= hi for f in m.frames)


def test_shard_size_splits_and_workers_do_not_change_bytes(tmp_path):
    src = class_folder(tmp_path / "src")
    opts = PackOptions(shard_size=parse_size("20KB"))
    pack(src, tmp_path / "a", opts, workers=1)
    pack(src, tmp_path / "b", opts, workers=2)
    index = json.loads((tmp_path / "a" / "index.json").read_text())
    assert len(index["shards"]) > 2 and sum(s["samples"] for s in index["shards"]) == 6
    for s in index["shards"]:
        assert s["bytes"] <= 20_000 + 1024 + 10240 or s["samples"] == 1  # tar end + record pad
        assert (tmp_path / "a" / s["name"]).read_bytes() == (tmp_path / "b" / s["name"]
                                                            ).read_bytes()
    assert (tmp_path / "a/index.json").read_text().replace(str(tmp_path / "a"), "") == \
        (tmp_path / "b/index.json").read_text().replace(str(tmp_path / "b"), "")


def test_bad_files_reported_and_nothing_usable_is_an_error(tmp_path):
    src = tmp_path / "src"
    write_tone(src / "good.wav")
    (src / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 20)
    (src / "empty.wav").write_bytes(b"")
    nan = np.full(4000, 0.1, np.float32)
    nan[10] = np.nan
    sf.write(src / "nan.wav", nan, 16000, subtype="FLOAT")
    result = pack(src, tmp_path / "out")
    bad = {Path(b["path"]).name: b["reason"]
           for b in json.loads((tmp_path / "out" / "bad_files.json").read_text())}
    assert set(bad) == {"corrupt.wav", "empty.wav", "nan.wav"} and "NaN" in bad["nan.wav"]
    assert len(result.bad_files) == 3 and result.index["samples"] == 1

    (src / "good.wav").unlink()
    with pytest.raises(PackError, match=f"nothing usable in source '{src}'"):
        pack(src, tmp_path / "out2")


def test_captions_and_manifest_sources(tmp_path):
    write_tone(tmp_path / "clips" / "a.wav", seconds=1.0)
    write_tone(tmp_path / "clips" / "b.wav", seconds=0.5)
    (tmp_path / "caps.csv").write_text("path,text\nclips/a.wav,a tone\nclips/b.wav,short\n")
    with pytest.raises(PackError, match="--labels folders needs a folder SRC"):
        pack(tmp_path / "caps.csv", tmp_path / "out1", PackOptions(labels="folders"))
    pack(tmp_path / "caps.csv", tmp_path / "out1", PackOptions(seed=None))
    m = members(tmp_path / "out1", "shard-000000.tar")
    assert m.text == ["a tone", "short"] and m.keys == [sample_key("clips/a.wav"),
                                                        sample_key("clips/b.wav")]

    write_manifest([{"path": "clips/a.wav", "duration": 0.25, "sample_rate": 16000,
                     "offset": 0.5, "label": "x", "text": "middle"},
                    {"path": "clips/b.wav", "duration": 0.5, "sample_rate": 16000}],
                   tmp_path / "m.jsonl.gz")
    pack(tmp_path / "m.jsonl.gz", tmp_path / "out2", PackOptions(seed=None))
    index = json.loads((tmp_path / "out2" / "index.json").read_text())
    m = members(tmp_path / "out2", "shard-000000.tar")
    assert index["classes"] == ["x"] and m.label == [0, -1] and m.frames == [4000, 8000]
    payload = (tmp_path / "out2" / "shard-000000.tar").read_bytes()
    region, _ = sf.read(io.BytesIO(payload[m.offset[0]:m.offset[0] + m.size[0]]))
    whole, _ = sf.read(tmp_path / "clips" / "a.wav")
    np.testing.assert_allclose(region, whole[8000:12000], atol=1e-4)


def test_out_checks_and_overwrite_moves_aside(tmp_path):
    src = class_folder(tmp_path / "src")
    with pytest.raises(PackError, match="is or contains the source"):
        pack(src, src)
    with pytest.raises(PackError, match="is or contains the source"):
        pack(src / "cat", src, overwrite=True)  # never moves the source aside
    out = tmp_path / "out"
    pack(src, out)
    again = pack(src, out)  # finished with the same settings: nothing to do
    assert again.already_done and again.index["samples"] == 6
    with pytest.raises(PackError, match=r"other options \(format: 'flac' there, 'wav' now\); "):
        pack(src, out, PackOptions(format="wav"))
    pack(src, out, PackOptions(format="wav"), overwrite=True)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("out.replaced-")]
    assert len(aside) == 1 and (aside[0] / "index.json").is_file()
    assert members(out, "shard-000000.tar").ext[0] == "wav"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(PackError, match="not an empty folder"):
        pack(src, tmp_path / "other")


def test_resume_after_a_failure_mid_pack(tmp_path, monkeypatch):
    import audio_core.data.pack as pack_module

    src = class_folder(tmp_path / "src")
    (src / "cat" / "cat.0b.wav").write_bytes(b"RIFF" * 10)  # bad, between two shards
    opts = PackOptions(shard_size=1000, seed=None)  # one sample per shard, in path order
    pack(src, tmp_path / "straight", opts)
    real, calls = pack_module.encode_sample, []

    def failing(job):
        calls.append(job)
        if len(calls) == 4:  # cat.0, cat.0b (bad), cat.1: fails at cat.2
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(pack_module, "encode_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        pack(src, tmp_path / "out", opts)
    progress = json.loads((tmp_path / "out" / "pack-progress.json").read_text())
    assert len(progress["shards"]) >= 1 and not (tmp_path / "out" / "index.json").exists()
    monkeypatch.setattr(pack_module, "encode_sample", real)
    result = pack(src, tmp_path / "out", opts)
    assert result.index["samples"] == 6
    assert len(result.bad_files) == 1
    for name in ("shard-000000.tar", "shard-000001.tar", "shard-000000.idx.json",
                 "bad_files.json", "index.json"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "straight" / name
                                                          ).read_bytes()
    assert not (tmp_path / "out" / "pack-progress.json").exists()


def test_verify_and_parse_size(tmp_path):
    pack(class_folder(tmp_path / "src"), tmp_path / "out")
    assert verify_shards(tmp_path / "out")[1] == []
    tar = tmp_path / "out" / "shard-000000.tar"
    data = bytearray(tar.read_bytes())
    data[2000] ^= 0xFF
    tar.write_bytes(bytes(data))
    assert verify_shards(tmp_path / "out")[1] == [
        "shard-000000.tar: sha256 differs from index.json (corrupt)"]
    assert parse_size("512MB") == 512_000_000 and parse_size("1GiB") == 2**30
    assert parse_size("1.5kb") == 1500 and parse_size(2048) == 2048
    for bad in ("", "12XB", "-1MB", "0", "MB"):
        with pytest.raises(PackError, match="bad size"):
            parse_size(bad)


def test_a_source_changed_since_the_kill_is_packed_from_the_start(tmp_path, monkeypatch):
    import audio_core.data.pack as pack_module

    src = class_folder(tmp_path / "src")
    opts = PackOptions(shard_size=parse_size("30KB"))
    real = pack_module.encode_sample
    calls = []

    def failing(job):
        calls.append(job)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(pack_module, "encode_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        pack(src, tmp_path / "out", opts)
    monkeypatch.setattr(pack_module, "encode_sample", real)
    write_tone(src / "cat" / "new.wav", seconds=0.2)
    result = pack(src, tmp_path / "out", opts)
    assert result.resumed_shards == 0 and result.index["samples"] == 7
    straight = pack(src, tmp_path / "straight", opts)
    assert [s.sha256 for s in result.index["shards"]] == [
        s.sha256 for s in straight.index["shards"]]


def test_a_second_pack_into_the_same_out_is_refused(tmp_path):
    import subprocess
    import sys

    src = class_folder(tmp_path / "src")
    (tmp_path / "out").mkdir()
    holder = subprocess.Popen(  # another process holds the lock, as a running pack does
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
         "fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
         str(tmp_path / "out" / ".pack.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(PackError, match="another `audio-core data pack` is writing"):
            pack(src, tmp_path / "out")
    finally:
        holder.kill()
        holder.wait()
    assert pack(src, tmp_path / "out").index["samples"] == 6
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []
