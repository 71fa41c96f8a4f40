"""The order of an epoch's samples over shards, computed from sample counts alone.

Samples are numbered globally: shard ``s`` holds ids ``starts[s] .. starts[s] + counts[s]``.
For epoch ``e`` (all from ``seed``):

1. the shards are put in a random order (or kept in index order without ``shuffle``),
   giving one stream of sample ids, each shard's in tar order;
2. rank ``r`` of ``W`` takes the ``r``-th of ``W`` equal contiguous parts of that stream
   (``N // W`` samples each: ranks read disjoint shards, except the one at a boundary; the
   last ``N mod W`` samples of the stream sit the epoch out, different ones every epoch);
3. each rank's part goes through a shuffle buffer of ``buffer`` samples, simulated on ids:
   a reader holding at most ``buffer`` decoded samples produces exactly this order.

Because the plan depends only on (seed, epoch, counts, buffer, world size), a resumed run
recomputes it and skips the samples already consumed, without reading any data.

If the world size changes mid-epoch, the samples the old ranks had not yet consumed are
concatenated (old rank order) and split again into equal contiguous parts for the new
ranks (at most ``W' - 1`` samples left over sit the rest of the epoch out); every sample
already consumed is never repeated in that epoch. ``segments`` records these changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Segment", "rank_plan", "shard_stream", "shuffle_buffer_order"]

#: ``(world_size, samples consumed per rank)`` of an earlier part of the current epoch.
Segment = tuple[int, int]


def _rng(seed: int, *salt: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *salt])


def shard_stream(counts: Sequence[int], *, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """Every sample id (int64), shard by shard, shards in epoch ``epoch``'s order."""
    sizes = np.asarray(counts, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    order = _rng(seed, 1, epoch).permutation(len(sizes)) if shuffle else np.arange(len(sizes))
    if not len(order):
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(starts[s], starts[s] + sizes[s], dtype=np.int64)
                           for s in order])


def shuffle_buffer_order(ids: np.ndarray, buffer: int, rng: np.random.Generator) -> np.ndarray:
    """``ids`` in the order a shuffle buffer of ``buffer`` slots emits them.

    Each incoming id fills a free slot; once all slots are full, a random slot is emitted
    and refilled with the incoming id. At the end, the remaining slots drain in random order.
    ``buffer <= 1`` keeps the order.
    """
    n = len(ids)
    if buffer <= 1 or n <= 1:
        return ids.copy()
    slots = list(ids[:buffer])
    picks = rng.integers(0, len(slots), size=max(0, n - len(slots)))
    out = np.empty(n, dtype=np.int64)
    k = 0
    for incoming, j in zip(ids[len(slots):].tolist(), picks.tolist(), strict=True):
        out[k] = slots[j]
        slots[j] = incoming
        k += 1
    out[k:] = rng.permutation(np.asarray(slots, dtype=np.int64))
    return out


def _split(ids: np.ndarray, world_size: int) -> list[np.ndarray]:
    share = len(ids) // world_size
    return [ids[r * share:(r + 1) * share] for r in range(world_size)]


def rank_plan(counts: Sequence[int], *, seed: int, epoch: int, rank: int, world_size: int,
              shuffle: bool = True, buffer: int = 1000,
              segments: Sequence[Segment] = ()) -> np.ndarray:
    """Sample ids rank ``rank`` of ``world_size`` reads in ``epoch`` from here on.

    With ``segments`` (earlier parts of the epoch run with other world sizes), the ids are
    those of this rank's share of what the earlier ranks left; see the module docstring.
    """
    stream = shard_stream(counts, seed=seed, epoch=epoch, shuffle=shuffle)
    worlds = [int(w) for w, _ in segments] + [int(world_size)]
    parts = _split(stream, worlds[0])
    parts = [shuffle_buffer_order(p, buffer if shuffle else 1, _rng(seed, 2, epoch, r))
             for r, p in enumerate(parts)]
    for i, (_, consumed) in enumerate(segments):
        left = np.concatenate([p[int(consumed):] for p in parts])
        parts = _split(left, worlds[i + 1])
    return parts[rank]
