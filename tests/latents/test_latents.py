"""`audio-core latents` / `stats` and the `core.latents` dataset: exact latents, resumable
sharded writes, per-rank shard sets, labels carried over, fingerprints checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import audio_core
from audio_core.cli import main
from audio_core.data.base import DatasetError
from audio_core.data.loader import make_dataloader
from audio_core.latents.dataset import LatentDataset
from audio_core.latents.encode import encode_latents, pre_encode
from audio_core.latents.store import LatentsError, read_index
from audio_core.models.fingerprint import model_fingerprint
from audio_core.models.latent_stats import load_stats

from .conftest import RATE


def test_chunked_latents_equal_the_unchunked_encoding(latents_workspace):
    model = audio_core.load(latents_workspace["model"])
    audio = torch.randn(1, 3001)
    whole = model.encode(torch.nn.functional.pad(audio, (0, 7))[None])[0]
    chunked = encode_latents(model, audio, chunk_seconds=0.05, context_seconds=0.02)
    assert chunked.shape == (3, 376)  # ceil(3001 / 8) frames
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_latents_cli_writes_shards_and_an_index_with_labels(latents_workspace, tmp_path, capsys):
    ws = latents_workspace
    out = tmp_path / "lat"
    assert main(["latents", str(ws["model"]), str(ws["clips"]), str(out), "--labels",
                 "--shard-mb", "0.00001"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["items"] == 5
    index = read_index(out)
    model = audio_core.load(ws["model"])
    assert index["model"]["fingerprint"] == model_fingerprint(model)
    assert index["model"]["latent_dim"] == 3 and index["model"]["frame_rate"] == RATE / 8
    assert index["dataset"]["classes"] == ["cat", "dog"]
    items = index["items"]
    assert [r["index"] for r in items] == list(range(5))
    assert sorted(r["label"] for r in items) == [0, 0, 0, 1, 1]
    assert len({r["shard"] for r in items}) == 5  # tiny shards: one item each
    ds = LatentDataset(out, segment_seconds=None)
    for i, record in enumerate(items):
        wave, _ = sf.read(record["path"], dtype="float32")
        expected = encode_latents(model, torch.from_numpy(wave)[None])
        item = ds[i]
        assert item["latent"].shape == (3, -(-len(wave) // 8)) == expected.shape
        torch.testing.assert_close(item["latent"], expected)
        assert item["label"] == record["label"] and item["path"] == record["path"]


def test_pre_encoding_resumes_after_the_last_complete_shard(latents_workspace, tmp_path):
    from audio_core.cli.latents import build_data

    ws = latents_workspace
    model = audio_core.load(ws["model"])
    data = build_data(str(ws["clips"]), model)
    out = tmp_path / "lat"

    calls = []

    class Counting:
        classes = ()

        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            calls.append(i)
            if len(calls) == 4:
                raise KeyboardInterrupt  # interrupted while encoding the 4th item
            return data[i]

    with pytest.raises(KeyboardInterrupt):
        pre_encode(model, Counting(), out, shard_mb=1e-6, show_progress=False)
    assert not (out / "index.json").exists()
    calls.clear()
    result = pre_encode(model, Counting(), out, shard_mb=1e-6, show_progress=False)
    assert calls == [3, 4] and result["items"] == 2  # items 0-2 were not encoded again
    assert [r["index"] for r in read_index(out)["items"]] == list(range(5))


def test_one_shard_set_per_rank_merged_in_order(latents_workspace, tmp_path):
    from audio_core.cli.latents import build_data

    ws = latents_workspace
    model = audio_core.load(ws["model"])
    data = build_data(str(ws["clips"]), model, labels=True)
    out = tmp_path / "lat"
    pre_encode(model, data, out, rank=1, world_size=2, show_progress=False)
    assert not (out / "index.json").exists()  # rank 1 never writes the index
    pre_encode(model, data, out, rank=0, world_size=2, show_progress=False)
    index = read_index(out)
    assert index["world_size"] == 2
    assert {r["shard"].split("/")[0] for r in index["items"]} == {"rank00000", "rank00001"}
    assert [r["index"] for r in index["items"]] == list(range(5))
    assert all(r["shard"].startswith(f"rank{r['index'] % 2:05d}") for r in index["items"])


def test_latent_dataset_crops_masks_and_batches(latents_workspace, tmp_path):
    ws = latents_workspace
    out = tmp_path / "lat"
    assert main(["latents", str(ws["model"]), str(ws["clips"]), str(out), "--labels"]) == 0
    ds = LatentDataset(out, segment_seconds=0.4, seed=3)  # 1000 frames/s x 0.4 s
    assert ds.segment_frames == 400 and ds.units_per_item == ("audio_s", 0.4)
    lengths = {ds.items[i]["frames"] for i in range(len(ds))}
    assert min(lengths) < 400 < max(lengths)
    for i in range(len(ds)):
        item = ds[i]
        assert item["latent"].shape == (3, 400) and item["mask"].shape == (400,)
        assert int(item["mask"].sum()) == min(400, ds.items[i]["frames"])
        assert not item["latent"][:, ~item["mask"]].any()
        # timing conditioners' keys: the crop's offset and the file's duration, in seconds
        assert item["seconds_total"] == pytest.approx(ds.items[i]["frames"] / 1000)
        assert item["seconds_start"] == pytest.approx(item["offset"] / 1000)
    assert torch.equal(ds[1]["latent"], LatentDataset(out, segment_seconds=0.4, seed=3)[1]
                       ["latent"])
    batch = next(iter(make_dataloader(ds, batch_size=2, seed=0)))
    assert batch["latent"].shape == (2, 3, 400) and batch["label"].dtype == torch.int64
    assert batch["seconds_total"].shape == (2,) and batch["seconds_total"].is_floating_point()
    fingerprint = ds.fingerprint
    assert LatentDataset(out, expected_fingerprint=fingerprint)
    with pytest.raises(DatasetError, match="expected 0000"):
        LatentDataset(out, expected_fingerprint="0000")
    with pytest.raises(DatasetError, match=r"index\.json is missing"):
        LatentDataset(tmp_path)


def test_stats_cli_from_audio_and_from_latents_agree_with_numpy(latents_workspace, tmp_path,
                                                                 capsys):
    ws = latents_workspace
    model = audio_core.load(ws["model"])
    out = tmp_path / "lat"
    assert main(["latents", str(ws["model"]), str(ws["clips"]), str(out)]) == 0
    assert main(["stats", str(ws["model"]), str(ws["clips"]), str(tmp_path / "a.st")]) == 0
    assert main(["stats", str(ws["model"]), str(out), str(tmp_path / "b.st")]) == 0
    capsys.readouterr()
    frames = np.concatenate([encode_latents(model, torch.from_numpy(
        sf.read(r["path"], dtype="float32")[0])[None]).double().numpy()
        for r in read_index(out)["items"]], axis=1)
    for name in ("a.st", "b.st"):
        stats, meta = load_stats(tmp_path / name, 3)
        np.testing.assert_allclose(stats["mean"].numpy(), frames.mean(1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats["std"].numpy(), frames.std(1), rtol=1e-5)
        assert meta["fingerprint"] == model_fingerprint(model)
        assert json.loads((tmp_path / f"{name}.json").read_text())["frames"] == frames.shape[1]
    # latents of another model are refused
    assert main(["stats", str(ws["other"]), str(out), str(tmp_path / "c.st")]) == 1
    assert "fingerprint" in capsys.readouterr().err
    with pytest.raises(LatentsError):
        read_index(tmp_path)


def test_captions_reach_the_latents_and_back(latents_workspace, tmp_path):
    ws = latents_workspace
    listing = tmp_path / "captions.jsonl"
    listing.write_text("\n".join(json.dumps({"path": str(p), "text": f"clip {p.stem} of "
                                             f"{p.parent.name}"})
                                 for p in sorted(ws["clips"].rglob("*.wav"))) + "\n")
    out = tmp_path / "lat"
    assert main(["latents", str(ws["model"]), str(listing), str(out)]) == 0
    ds = LatentDataset(out, segment_seconds=0.1)
    texts = {ds[i]["text"] for i in range(len(ds))}
    assert texts == {f"clip {p.stem} of {p.parent.name}" for p in ws["clips"].rglob("*.wav")}
    batch = next(iter(make_dataloader(ds, batch_size=2, seed=0)))
    assert len(batch["text"]) == 2 and all(t.startswith("clip ") for t in batch["text"])


def test_latents_as_tar_shards_read_by_core_shards(latents_workspace, tmp_path, capsys):
    from audio_core.data.shards.dataset import ShardDataset

    ws = latents_workspace
    out = tmp_path / "lat"
    assert main(["latents", str(ws["model"]), str(ws["clips"]), str(out), "--labels",
                 "--shards", "--shard-mb", "0.00001"]) == 0
    assert json.loads(capsys.readouterr().out)["items"] == 5
    index = json.loads((out / "index.json").read_text())
    assert index["content"] == "latents" and len(index["shards"]) == 5
    model = audio_core.load(ws["model"])
    assert index["model"]["fingerprint"] == model_fingerprint(model)
    safetensors_out = tmp_path / "lat_st"
    assert main(["latents", str(ws["model"]), str(ws["clips"]), str(safetensors_out),
                 "--labels"]) == 0
    reference = LatentDataset(safetensors_out, segment_seconds=None)
    shards = ShardDataset(str(out), segment_seconds=None, shuffle=False,
                          expected_fingerprint=model_fingerprint(model))
    assert shards.classes == ["cat", "dog"] and shards.latent_dim == 3 and len(shards) == 5
    for i in range(5):  # the same latents, labels and source paths, in item order
        a, b = shards[i], reference[i]
        torch.testing.assert_close(a["latent"], b["latent"])
        assert a["label"] == b["label"] and a["length"] == b["length"]
    stats = {}
    for name, folder in (("tar", out), ("safetensors", safetensors_out)):
        assert main(["stats", str(ws["model"]), str(folder), str(tmp_path / f"{name}.st")]) == 0
        stats[name] = load_stats(tmp_path / f"{name}.st")[0]
    torch.testing.assert_close(stats["tar"]["mean"], stats["safetensors"]["mean"])
    crops = ShardDataset(str(out), segment_seconds=0.05)
    assert crops[0]["latent"].shape == (3, round(0.05 * RATE / 8))
    with pytest.raises(DatasetError, match="fingerprint"):
        ShardDataset(str(out), expected_fingerprint="0" * 16)
    capsys.readouterr()
    assert main(["latents", str(ws["model"]), str(ws["clips"]), str(tmp_path / "bf"),
                 "--shards", "--dtype", "bfloat16"]) != 0
    assert "float32 or float16, not bfloat16" in capsys.readouterr().err
    assert not (tmp_path / "bf").exists()
