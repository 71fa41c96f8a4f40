"""Weighted running means of metrics over validation batches, reducible across ranks."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import Tensor

from audio_core import distributed


class MetricAccumulator:
    """Accumulates ``sum(value * weight)`` and ``sum(weight)`` per metric name.

    ``update({"si_sdr": 12.3}, weight=batch_size)`` adds batch means; a Tensor with more than
    one element is taken as per-item values (each weight 1). :meth:`compute` returns the
    weighted means; in a process group of several ranks it first all-reduces sums and
    counts (a collective: every rank must call it), otherwise it is purely local.
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, float] = {}

    def update(self, metrics: Mapping[str, float | Tensor], weight: float = 1.0) -> None:
        for name, value in metrics.items():
            if isinstance(value, Tensor) and value.numel() != 1:
                total, count = float(value.detach().double().sum()), float(value.numel())
            else:
                total, count = float(value) * weight, float(weight)
            self._sums[name] = self._sums.get(name, 0.0) + total
            self._counts[name] = self._counts.get(name, 0.0) + count

    def reset(self) -> None:
        self._sums.clear()
        self._counts.clear()

    def __len__(self) -> int:
        return len(self._sums)

    def compute(self, *, sync: bool = True) -> dict[str, float]:
        """Weighted mean per metric (NaN for a zero total weight), reduced over ranks if
        ``sync`` and distributed. Local state is left untouched, so it can be called again."""
        sums, counts = dict(self._sums), dict(self._counts)
        if sync and distributed.is_distributed():
            sums, counts = self._all_reduce(sums, counts)
        return {k: sums[k] / counts[k] if counts[k] else float("nan") for k in sorted(sums)}

    @staticmethod
    def _all_reduce(sums: dict[str, float], counts: dict[str, float]):
        names: list[list[str]] = [[] for _ in range(dist.get_world_size())]
        dist.all_gather_object(names, sorted(sums))  # ranks may have seen different metrics
        keys = sorted({k for rank_keys in names for k in rank_keys})
        packed = torch.tensor([sums.get(k, 0.0) for k in keys] + [counts.get(k, 0.0) for k in keys],
                              dtype=torch.float64, device=distributed.collective_device())
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        values = packed.tolist()
        return dict(zip(keys, values[: len(keys)], strict=True)), dict(
            zip(keys, values[len(keys):], strict=True))
