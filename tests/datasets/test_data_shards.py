"""core.shards: reading packed shards, the epoch plan, exact resume, faults."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import torch

from audio_core.data.base import DatasetError
from audio_core.data.loader import make_dataloader
from audio_core.data.shards.dataset import ShardDataset, ShardSampler
from audio_core.data.shards.plan import rank_plan, shuffle_buffer_order

from .shard_helpers import sample_number, write_shards


@pytest.fixture
def packed(tmp_path):
    return write_shards(tmp_path / "packed", [5, 7, 4, 8])  # 24 samples


def test_items_are_crops_with_labels_and_captions(packed):
    ds = ShardDataset(str(packed), sample_rate=8000, segment_seconds=0.25, seed=3)
    assert len(ds) == 24 and ds.classes == ["even", "odd"]
    item = ds[13]
    assert item["audio"].shape == (1, 2000) and item["audio"].dtype == torch.float32
    assert item["mask"].all() and item["length"] == 2000
    assert sample_number(item["path"]) == 13 and item["label"] == 1
    assert item["text"] == "tone number 13"
    assert item["path"].startswith(str(packed / "shard-000002.tar"))
    assert item["seconds_total"] == 0.75 and item["seconds_start"] == item["offset"] / 8000
    # the crop is the same region of the file as decoding the whole file gives
    whole = ShardDataset(str(packed), sample_rate=8000, segment_seconds=None)[13]
    off = item["offset"]
    assert torch.equal(item["audio"], whole["audio"][:, off:off + 2000])


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_wav_members_are_read_as_raw_pcm_with_soundfiles_values(tmp_path, subtype):
    wav = write_shards(tmp_path / "wav", [4], sr=8000, channels=2, fmt="wav", subtype=subtype)
    flac = write_shards(tmp_path / "flac", [4], sr=8000, channels=2)
    assert ShardDataset(str(flac), sample_rate=8000).members(0).pcm_dtype == [""] * 4
    for kwargs in ({"segment_seconds": 0.1}, {"segment_seconds": None},
                   {"segment_seconds": 0.1, "sample_rate": 16000, "channels": 1}):
        args = {"sample_rate": 8000, "channels": 2, **kwargs}
        fast, decoded = ShardDataset(str(wav), **args), ShardDataset(str(wav), **args)
        assert fast.members(0).pcm_dtype == ["<i2" if subtype == "PCM_16" else "<f4"] * 4
        decoded.members(0).pcm_dtype[:] = [""] * 4  # decode the WAV files with soundfile
        for i in range(4):
            x, y = fast[i], decoded[i]
            assert x["offset"] == y["offset"] and torch.equal(x["audio"], y["audio"])


def test_crops_depend_on_epoch_not_on_rank(packed):
    ds = ShardDataset(str(packed), sample_rate=8000, segment_seconds=0.1, seed=0)
    first = [ds[i]["offset"] for i in range(24)]
    ds.set_rank(1)
    assert [ds[i]["offset"] for i in range(24)] == first
    ds.set_epoch(1)
    assert [ds[i]["offset"] for i in range(24)] != first


def test_resampling_channels_and_short_samples_padded(tmp_path):
    root = write_shards(tmp_path / "p", [3], sr=22050, channels=2, seconds=0.2)
    ds = ShardDataset(str(root), sample_rate=16000, channels=1, segment_seconds=0.5)
    item = ds[0]
    assert item["audio"].shape == (1, 8000)
    assert item["length"] == round(0.2 * 16000) and not item["mask"][-1]
    stereo = ShardDataset(str(root), sample_rate=16000, channels=2, segment_seconds=0.1)[0]
    assert stereo["audio"].shape == (2, 1600)


def test_plan_covers_every_sample_once_per_epoch_across_ranks():
    counts = [5, 7, 4, 8, 6, 2]
    for world in (1, 2, 3):
        plans = [rank_plan(counts, seed=1, epoch=0, rank=r, world_size=world, buffer=5)
                 for r in range(world)]
        assert all(len(p) == 32 // world for p in plans)
        ids = np.concatenate(plans)
        assert len(set(ids.tolist())) == len(ids)  # disjoint
        if 32 % world == 0:
            assert sorted(ids.tolist()) == list(range(32))
    a = rank_plan(counts, seed=1, epoch=0, rank=0, world_size=1, buffer=5)
    b = rank_plan(counts, seed=1, epoch=1, rank=0, world_size=1, buffer=5)
    assert sorted(a.tolist()) == sorted(b.tolist()) and a.tolist() != b.tolist()


def test_shuffle_buffer_holds_at_most_buffer_samples():
    ids = np.arange(100)
    out = shuffle_buffer_order(ids, 8, np.random.default_rng(0))
    assert sorted(out.tolist()) == list(range(100))
    for k, sample in enumerate(out.tolist()):  # emitted k-th: must have arrived by then
        assert sample <= k + 7


def test_ranks_read_disjoint_shards(tmp_path):
    root = write_shards(tmp_path / "p", [4] * 8, seconds=0.1)
    ds = ShardDataset(str(root), sample_rate=8000, segment_seconds=0.05)
    shards = []
    for rank in range(2):
        plan = ds.make_sampler(seed=0, rank=rank, world_size=2, shuffle=True,
                               drop_last=True).indices()
        shards.append({ds.locate(i)[0] for i in plan})
    assert not shards[0] & shards[1]


def _sequence(loader, batches):
    def forever():  # as the trainer iterates: epoch after epoch
        while True:
            yield from loader

    it = forever()
    out = []
    for _ in range(batches):
        b = next(it)
        out += [(sample_number(p), int(o)) for p, o in zip(b["path"], b["offset"], strict=True)]
    return out


@pytest.mark.parametrize("workers_after", [0, 2])
def test_exact_resume_with_another_worker_count(packed, workers_after):
    def loader(workers):
        ds = ShardDataset(str(packed), sample_rate=8000, segment_seconds=0.1, seed=5,
                          buffer=6)
        return make_dataloader(ds, batch_size=4, seed=5, num_workers=workers)

    straight = _sequence(loader(0), 14)  # more than two epochs of 6 batches
    first = loader(2)
    head = _sequence(first, 8)
    state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint stores it
    resumed = loader(workers_after)
    resumed.load_state_dict(state)
    assert head + _sequence(resumed, 6) == straight


def test_resume_on_another_world_size_continues_the_epoch():
    counts = [6, 6, 6, 6]
    samplers = [ShardSampler(counts, seed=2, rank=r, world_size=2, buffer=4) for r in range(2)]
    seen = []
    for s in samplers:
        seen += s.indices()[:5]
        s.advance(5)
    state = samplers[0].state_dict()
    after = []
    for r in range(3):
        s = ShardSampler(counts, seed=2, rank=r, world_size=3, buffer=4)
        s.load_state_dict(state)
        assert s.epoch == 0 and len(s) == 4  # (24 - 10) // 3, 2 left over
        after += list(s)
    assert not set(seen) & set(after) and len(set(after)) == 12
    assert len(set(seen) | set(after)) == 22
    s.next_epoch()
    assert s.segments == [] and len(s) == 8  # next epoch: 24 // 3


def test_state_from_another_dataset_is_refused(packed):
    s = ShardSampler([5, 7, 4, 8])
    with pytest.raises(ValueError, match="dataset_size was 25"):
        s.load_state_dict({**s.state_dict(), "dataset_size": 25})


def test_truncated_shard_and_corrupt_member_are_skipped_and_reported(packed, tmp_path):
    tar = packed / "shard-000001.tar"
    with tarfile.open(tar) as t:
        member = next(m for m in t.getmembers() if m.name == "s000006.flac")
    data = bytearray(tar.read_bytes())
    data[member.offset_data:member.offset_data + member.size] = b"\0" * member.size
    tar.write_bytes(bytes(data))
    last = packed / "shard-000003.tar"
    last.write_bytes(last.read_bytes()[:4000])  # only the first member survives
    report = tmp_path / "errors.jsonl"
    ds = ShardDataset(str(packed), sample_rate=8000, segment_seconds=0.1)
    ds.set_report_file(report)
    assert sample_number(ds[6]["path"]) == 7  # the next sample of the same shard
    assert sample_number(ds[16]["path"]) == 16  # the truncated shard's first member is whole
    assert sample_number(ds[17]["path"]) == 16  # the others: the shard's first, readable one
    assert sample_number(ds[20]["path"]) == 16
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    assert {"shard": str(tar), "member": "s000006.flac"} == {
        k: lines[0][k] for k in ("shard", "member")}
    assert "decode" in lines[0]["reason"]
    assert any("truncated" in x["reason"] for x in lines)
    assert len(ds.bad_files) == len(lines)


def test_missing_shard_is_skipped_whole(packed):
    (packed / "shard-000000.tar").unlink()
    ds = ShardDataset(str(packed), sample_rate=8000, segment_seconds=0.1)
    assert sample_number(ds[2]["path"]) == 5
    assert [b.reason for b in ds.bad_files] == ["not found"]


def test_nothing_readable_is_an_error_at_start(packed):
    for tar in packed.glob("*.tar"):
        tar.unlink()
    with pytest.raises(DatasetError, match="none of the 4 shard"):
        ShardDataset(str(packed), sample_rate=8000)


@pytest.mark.parametrize("urls, match", [
    ("{root}/nowhere", "cannot read shard index"),
    ("{root}/packed/shard-000000.idx.json", "not an audio-core shard index"),
    ([], "params.urls is empty"),
])
def test_bad_urls_are_clear_errors(packed, tmp_path, urls, match):
    if isinstance(urls, str):
        urls = urls.format(root=tmp_path)
    with pytest.raises(DatasetError, match=match):
        ShardDataset(urls, sample_rate=8000)


def test_brace_pattern_and_list_without_index(packed):
    pattern = str(packed / "shard-{000000..000003}.tar")
    ds = ShardDataset(pattern, sample_rate=8000, segment_seconds=0.1)
    assert len(ds) == 24 and sample_number(ds[23]["path"]) == 23
    for idx in packed.glob("*.idx.json"):  # no member index: the tars are scanned
        idx.unlink()
    ds = ShardDataset([str(packed / "shard-000001.tar"), str(packed / "shard-000002.tar")],
                      sample_rate=8000, segment_seconds=0.1)
    assert len(ds) == 11 and sample_number(ds[0]["path"]) == 5
