"""ResumableSampler and make_dataloader: rank sharding, epochs, exact mid-epoch resume."""

from __future__ import annotations

import pytest
import torch

from audio_core.data.folders import FolderDataset
from audio_core.data.loader import make_dataloader
from audio_core.data.sampler import ResumableSampler
from audio_core.data.synthetic import SyntheticDataset


def test_permutation_per_epoch():
    s = ResumableSampler(10, seed=1)
    e0 = list(s)
    assert sorted(e0) == list(range(10)) and e0 == list(s)  # iterating does not advance
    s.set_epoch(1)
    assert sorted(s) == list(range(10)) and list(s) != e0
    assert list(ResumableSampler(10, seed=1)) == e0
    assert list(ResumableSampler(10, seed=2)) != e0
    assert list(ResumableSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(("n", "drop_last", "per_rank"), [(10, False, 5), (11, False, 6),
                                                         (11, True, 5)])
def test_ranks_are_disjoint_and_cover(n, drop_last, per_rank):
    for epoch in range(2):
        shards = []
        for rank in range(2):
            s = ResumableSampler(n, seed=0, rank=rank, world_size=2, drop_last=drop_last)
            s.set_epoch(epoch)
            shards.append(list(s))
            assert len(s) == per_rank == len(shards[-1])
        a, b = map(set, shards)
        if n % 2 == 0 or drop_last:
            assert not a & b
        assert len(a | b) == (n - 1 if drop_last and n % 2 else n)


def test_sampler_state_round_trip():
    s = ResumableSampler(20, seed=3, rank=1, world_size=2)
    s.set_epoch(4)
    s.advance(3)
    t = ResumableSampler(20, seed=0, rank=1, world_size=2)
    t.load_state_dict(s.state_dict())
    assert (t.epoch, t.consumed, t.seed, len(t)) == (4, 3, 3, 7)
    assert list(t) == list(s) == s.indices()[3:]
    t.set_epoch(4)  # same epoch keeps the position; a new one restarts
    assert t.consumed == 3
    t.set_epoch(5)
    assert t.consumed == 0
    with pytest.raises(ValueError, match="dataset_size was 20, now 21"):
        ResumableSampler(21, rank=1, world_size=2).load_state_dict(s.state_dict())
    with pytest.raises(ValueError, match="rank"):
        ResumableSampler(20, rank=2, world_size=2)


@pytest.fixture
def folder_ds(tmp_path, tone):
    for i in range(7):
        tone(tmp_path / "d" / f"{i}.wav", seconds=2.0, sr=8000, freq=100 + 40 * i)
    return lambda: FolderDataset(tmp_path / "d", sample_rate=8000, segment_seconds=0.1, seed=5)


def _keys(batches):
    return [(p, int(o)) for b in batches for p, o in zip(b["path"], b["offset"], strict=True)]


def _run(loader, epochs, stop_after=None):
    """Iterate ``epochs`` epochs; with ``stop_after`` return early with (batches, state)."""
    out = []
    for _ in range(epochs):
        for batch in loader:
            out.append(batch)
            if stop_after is not None and len(out) == stop_after:
                return out, loader.state_dict()
    return out, loader.state_dict()


@pytest.mark.parametrize("k", [1, 3, 4, 5])
def test_resume_mid_epoch_matches_uninterrupted(folder_ds, k):
    def loader():
        return make_dataloader(folder_ds(), batch_size=2, seed=11, drop_last=False)

    full, _ = _run(loader(), epochs=2)
    assert len(full) == 8  # 4 batches per epoch (7 items, last batch of 1)
    head, state = _run(loader(), epochs=2, stop_after=k)
    resumed = loader()
    resumed.load_state_dict(state)
    epochs_left = 2 - state["epoch"]
    tail, _ = _run(resumed, epochs=epochs_left)
    assert _keys(head + tail) == _keys(full)
    for a, b in zip(head + tail, full, strict=True):
        torch.testing.assert_close(a["audio"], b["audio"], rtol=0, atol=0)


def test_epochs_advance_and_crops_change(folder_ds):
    loader = make_dataloader(folder_ds(), batch_size=3, seed=0)
    assert len(loader) == 2  # 7 items, drop_last
    e0 = _keys(list(loader))
    assert loader.epoch == 1
    e1 = _keys(list(loader))
    assert len(e0) == len(e1) == 6 and e0 != e1
    loader.set_epoch(0)
    assert _keys(list(loader)) == e0


def test_worker_count_does_not_change_data(folder_ds):
    runs = [_keys(_run(make_dataloader(folder_ds(), batch_size=2, seed=1, num_workers=w),
                       epochs=1)[0]) for w in (0, 2)]
    assert runs[0] == runs[1]


def test_ranks_see_different_items():
    ds = SyntheticDataset(sample_rate=8000, segment_seconds=0.05, num_items=12, seed=0)
    seen = []
    for rank in range(2):
        loader = make_dataloader(ds, batch_size=3, seed=0, rank=rank, world_size=2)
        seen.append(torch.cat([b["audio"] for b in loader]))
    assert seen[0].shape == seen[1].shape == (6, 1, 400)
    # no item appears on both ranks
    assert not any(torch.equal(a, b) for a in seen[0] for b in seen[1])
