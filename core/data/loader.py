"""DataLoader construction: resumable sampler, per-rank/worker seeding and collation."""

from __future__ import annotations

import random
import typing
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from audio_core.data.sampler import OrdersItsSamples, ResumableSampler

__all__ = ["AudioDataLoader", "collate", "make_dataloader", "seed_worker"]


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch dataset items of any fields.

    Tensors are stacked; those whose last axis differs (clips or latents of different
    lengths) are zero-padded (``False`` for bool masks) to the longest first. Ints become
    int64 ``(batch,)``, floats float32 ``(batch,)``, strings a list. So audio items give
    ``audio`` ``(batch, channels, time)`` and ``mask`` ``(batch, time)``, latent items
    ``latent`` ``(batch, dim, frames)``; ``label``/``offset``/``length`` ``(batch,)``.
    """
    if not items:
        raise ValueError("collate got an empty batch")
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        first = values[0]
        if isinstance(first, torch.Tensor):
            longest = max(v.shape[-1] for v in values) if first.ndim else 0
            if first.ndim and any(v.shape[-1] != longest for v in values):
                values = [torch.nn.functional.pad(v, (0, longest - v.shape[-1]))
                          for v in values]
            batch[key] = torch.stack(values)
        elif isinstance(first, bool):
            batch[key] = torch.tensor(values, dtype=torch.bool)
        elif isinstance(first, int):
            batch[key] = torch.tensor([int(v) for v in values], dtype=torch.int64)
        elif isinstance(first, float):
            batch[key] = torch.tensor(values, dtype=torch.float32)
        elif isinstance(first, str):
            batch[key] = list(values)
        else:
            batch[key] = torch.utils.data.default_collate(values)
    return batch


def seed_worker(worker_id: int) -> None:
    """Seed python/numpy in a worker from torch's per-worker seed (itself seeded per rank)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class AudioDataLoader(DataLoader):
    """A DataLoader whose position (epoch, samples consumed) can be saved and restored.

    Counting happens as batches reach the caller, so prefetching workers do not skew it.
    When an epoch is fully iterated the loader moves to the next epoch by itself; calling
    :meth:`set_epoch` explicitly works too. ``state_dict()`` may be saved after any batch.
    """

    sampler: ResumableSampler

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)

    def __iter__(self) -> Iterator[Any]:
        sampler, size = self.sampler, self.batch_size or 1
        dataset: Any = self.dataset
        if hasattr(dataset, "set_epoch"):  # workers copy the dataset when iteration starts
            dataset.set_epoch(sampler.epoch)
        for batch in super().__iter__():
            sampler.advance(size)
            yield batch
        sampler.next_epoch()


def make_dataloader(dataset: Any, *, batch_size: int, seed: int, rank: int = 0,
                    world_size: int = 1, num_workers: int = 0, shuffle: bool = True,
                    drop_last: bool = True, pin_memory: bool = False,
                    prefetch_factor: int | None = None) -> AudioDataLoader:
    """A resumable loader over this rank's share of ``dataset``.

    The sampler (``loader.sampler``, a :class:`ResumableSampler`, or the one a dataset that
    :class:`~audio_core.data.sampler.OrdersItsSamples` makes) is seeded with ``seed`` so
    all ranks agree on the permutation; the dataset gets ``set_rank(rank)`` when it has it,
    and workers are seeded from ``(seed, rank)``. Items are batched with :func:`collate`.
    Save ``loader.state_dict()`` with a checkpoint and ``load_state_dict`` it to resume.
    With ``drop_last``, a dataset smaller than one batch per rank is a ``DatasetError``
    (the loader would never yield a batch, and a training loop would wait forever).
    """
    if drop_last and len(dataset) < batch_size * world_size:
        from audio_core.data.base import DatasetError

        raise DatasetError(f"the dataset has {len(dataset)} items, fewer than one batch of "
                           f"{batch_size} per rank x {world_size} rank(s) (data.batch_size); "
                           f"add data or lower data.batch_size")
    if hasattr(dataset, "set_rank"):
        dataset.set_rank(rank)
    if isinstance(dataset, OrdersItsSamples):
        sampler = dataset.make_sampler(seed=seed, rank=rank, world_size=world_size,
                                       shuffle=shuffle, drop_last=drop_last)
    else:
        sampler = ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank,
                                   world_size=world_size, drop_last=drop_last)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + rank)
    extra: dict[str, Any] = ({"prefetch_factor": prefetch_factor}
                             if num_workers and prefetch_factor else {})
    return AudioDataLoader(typing.cast(Any, dataset), batch_size=batch_size, sampler=sampler,
                           num_workers=num_workers, collate_fn=collate, drop_last=drop_last,
                           pin_memory=pin_memory, worker_init_fn=seed_worker,
                           generator=generator, persistent_workers=False, **extra)
