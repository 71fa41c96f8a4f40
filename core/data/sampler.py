"""A distributed-aware, resumable sampler.

Each epoch draws one permutation of the dataset from ``seed + epoch`` (the same on every
rank); rank ``r`` of ``world_size`` takes positions ``r, r + world_size, ...`` of it, so ranks
see disjoint items. The sampler remembers how many of its samples were consumed in the
current epoch (the loader reports this with :meth:`ResumableSampler.advance`), and
``state_dict``/``load_state_dict`` restart exactly there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import torch
from torch.utils.data import Sampler

__all__ = ["OrdersItsSamples", "ResumableSampler"]


class ResumableSampler(Sampler[int]):
    """Indices of this rank's share of epoch ``epoch``, from sample ``consumed`` on.

    With ``drop_last=False`` the permutation is padded by wrapping around so every rank gets
    ``ceil(N / world_size)`` samples; with ``drop_last=True`` the tail is dropped and every
    rank gets ``N // world_size``. Iterating does not move the resume point; call
    :meth:`advance` when samples are actually used (the loader does).
    """

    def __init__(self, dataset_size: int, *, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = False) -> None:
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, "
                             f"world_size={world_size}")
        if dataset_size < 0:
            raise ValueError(f"dataset_size must be >= 0, got {dataset_size}")
        self.dataset_size, self.shuffle, self.seed = int(dataset_size), shuffle, int(seed)
        self.rank, self.world_size, self.drop_last = int(rank), int(world_size), drop_last
        self.epoch = 0
        self.consumed = 0
        if drop_last:
            self.num_samples = self.dataset_size // self.world_size
        else:
            self.num_samples = math.ceil(self.dataset_size / self.world_size)

    def __len__(self) -> int:
        """Samples left in this epoch for this rank."""
        return self.num_samples - self.consumed

    def set_epoch(self, epoch: int) -> None:
        """Switch to ``epoch``; a different epoch restarts from its first sample."""
        if int(epoch) != self.epoch:
            self.epoch, self.consumed = int(epoch), 0

    def advance(self, n: int) -> None:
        """Mark ``n`` more samples of this epoch as consumed."""
        self.consumed = min(self.num_samples, self.consumed + int(n))

    def next_epoch(self) -> None:
        """Mark the current epoch finished and move to the next one."""
        self.epoch, self.consumed = self.epoch + 1, 0

    def indices(self, epoch: int | None = None) -> list[int]:
        """All of this rank's indices for ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        n = self.dataset_size
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        total = self.num_samples * self.world_size
        if total > n and n:  # pad by wrapping around
            order += (order * math.ceil(total / n))[: total - n]
        return order[self.rank:total:self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.consumed:])

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "consumed": self.consumed, "seed": self.seed,
                "shuffle": self.shuffle, "dataset_size": self.dataset_size,
                "world_size": self.world_size, "rank": self.rank}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``'s epoch and position (the seed is taken from ``state`` too).

        Raises ``ValueError`` if the dataset size or world size changed, since positions
        would then refer to different samples.
        """
        for key in ("dataset_size", "world_size"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f"cannot resume sampler: {key} was {state[key]}, "
                                 f"now {getattr(self, key)}")
        self.seed = int(state.get("seed", self.seed))
        self.shuffle = bool(state.get("shuffle", self.shuffle))
        self.epoch = int(state["epoch"])
        self.consumed = min(self.num_samples, int(state["consumed"]))


@runtime_checkable
class OrdersItsSamples(Protocol):
    """A dataset that plans its own resumable order (e.g. ``core.shards``: shard by shard).

    ``make_dataloader`` uses the sampler it returns instead of a :class:`ResumableSampler`
    over ``range(len(dataset))``; it must offer the same methods (a subclass does).
    """

    def make_sampler(self, *, seed: int, rank: int, world_size: int, shuffle: bool,
                     drop_last: bool) -> ResumableSampler: ...
