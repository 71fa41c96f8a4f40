"""core.shards over real remote storage on 127.0.0.1: HTTP (byte ranges) and S3 (moto)."""

from __future__ import annotations

import pytest
import torch

from audio_core.data.base import DatasetError
from audio_core.data.shards import source
from audio_core.data.shards.dataset import ShardDataset

from .remote_servers import http_server, s3_server, upload
from .shard_helpers import sample_number, write_shards

pytestmark = pytest.mark.integration


@pytest.fixture
def packed(tmp_path):
    return write_shards(tmp_path / "www" / "packed", [5, 7, 4])


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setattr(source, "_RETRIES", (0.05, 0.05))


def same_items(remote: ShardDataset, local: ShardDataset) -> None:
    assert len(remote) == len(local) == 16
    for i in range(16):
        a, b = remote[i], local[i]
        assert torch.equal(a["audio"], b["audio"]) and a["offset"] == b["offset"]
        assert a["text"] == b["text"] and a["label"] == b["label"]


def test_http_reads_the_same_items_as_local(packed):
    local = ShardDataset(str(packed), sample_rate=8000, segment_seconds=0.2)
    with http_server(packed.parent) as (url, _):
        remote = ShardDataset(f"{url}/packed", sample_rate=8000, segment_seconds=0.2)
        assert remote.urls[0] == f"{url}/packed/shard-000000.tar"
        same_items(remote, local)
        by_index = ShardDataset(f"{url}/packed/index.json", sample_rate=8000)
        assert len(by_index) == 16
        pattern = ShardDataset(f"{url}/packed/shard-{{000000..000002}}.tar", sample_rate=8000,
                               segment_seconds=0.2)
        same_items(pattern, local)


def test_s3_reads_the_same_items_as_local(packed, monkeypatch):
    local = ShardDataset(str(packed), sample_rate=8000, segment_seconds=0.2)
    with s3_server(monkeypatch):
        upload(packed, "audio", "sets/packed")
        remote = ShardDataset("s3://audio/sets/packed/", sample_rate=8000, segment_seconds=0.2)
        same_items(remote, local)
        with pytest.raises(DatasetError, match=r"s3://audio/nothing/index\.json"):
            ShardDataset("s3://audio/nothing", sample_rate=8000)


def test_dropped_connection_is_retried_then_reported(packed, caplog):
    with http_server(packed.parent) as (url, server):
        ds = ShardDataset(f"{url}/packed", sample_rate=8000, segment_seconds=0.2)
        server.drops["shard-000001.tar"] = 1  # once: the retry succeeds
        assert sample_number(ds[6]["path"]) == 6 and not ds.bad_files
        assert "retrying" in caplog.text
        ds.source._open.clear()  # new connections from here on
        server.drops["shard-000002.tar"] = 1000  # always: the samples are reported, skipped
        item = ds[13]
        assert sample_number(item["path"]) == 0  # shard 2 unreadable: wraps to shard 0
        reasons = [b.reason for b in ds.bad_files]
        assert reasons and all("read failed after 3 attempt(s)" in r for r in reasons)
        assert all("shard-000002.tar" in b.path for b in ds.bad_files)


def test_missing_remote_shard_is_reported_whole(packed):
    (packed / "shard-000001.tar").unlink()
    with http_server(packed.parent) as (url, _):
        ds = ShardDataset(f"{url}/packed", sample_rate=8000, segment_seconds=0.2)
        assert sample_number(ds[5]["path"]) == 12
        assert [b.path for b in ds.bad_files] == [f"{url}/packed/shard-000001.tar"]
