"""Per-channel latent statistics: streaming, numerically stable, mergeable across ranks.

:class:`RunningMoments` keeps ``count``, ``mean`` and the sum of squared deviations ``m2``
per channel in float64 and merges batches with Chan et al.'s pairwise update, so the result
equals a one-pass numpy ``mean``/``std`` (``ddof=0``) of all frames to float64 precision,
whatever the batching. Statistics files (``audio-core stats``) are safetensors with
``mean``, ``std`` and ``count`` ``(dim,)`` plus JSON metadata (source model fingerprint).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from audio_core.errors import AudioCoreError
from audio_core.files import check_readable

STATS_FORMAT = "audio-core latent stats v1"


class StatsError(AudioCoreError, ValueError):
    """A statistics file is missing, malformed or does not fit the model."""


class RunningMoments:
    """Streaming per-channel mean/std of latents ``(batch, dim, frames)``."""

    def __init__(self, dim: int) -> None:
        self.dim = int(dim)
        self.count = torch.zeros(self.dim, dtype=torch.float64)
        self.mean = torch.zeros(self.dim, dtype=torch.float64)
        self.m2 = torch.zeros(self.dim, dtype=torch.float64)

    def update(self, latent: Tensor, mask: Tensor | None = None) -> None:
        """Add ``latent`` ``(batch, dim, frames)`` (or ``(dim, frames)``); ``mask``
        ``(batch, frames)`` bool keeps only real frames."""
        x = latent.detach().to("cpu", torch.float64)
        if x.ndim == 2:
            x = x[None]
            mask = None if mask is None else mask[None]
        if x.shape[1] != self.dim:
            raise StatsError(f"latent has {x.shape[1]} channels, statistics have {self.dim}")
        w = torch.ones(x.shape[0], x.shape[2], dtype=torch.float64) if mask is None \
            else mask.detach().to("cpu", torch.float64)
        n = w.sum()
        if n == 0:
            return
        w = w[:, None, :]
        mean = (x * w).sum((0, 2)) / n
        m2 = ((x - mean[None, :, None]).pow(2) * w).sum((0, 2))
        self.merge(torch.full_like(mean, float(n)), mean, m2)

    def merge(self, count: Tensor, mean: Tensor, m2: Tensor) -> None:
        """Fold in another set of moments (Chan et al.'s pairwise combination)."""
        total = self.count + count
        safe = total.clamp_min(1.0)
        delta = mean - self.mean
        self.mean = self.mean + delta * count / safe
        self.m2 = self.m2 + m2 + delta.pow(2) * self.count * count / safe
        self.count = total

    def all_reduce(self) -> None:
        """Merge the moments of every rank (collective when distributed)."""
        from audio_core import distributed

        if not distributed.is_initialized() or distributed.world_size() <= 1:
            return
        mine = torch.stack([self.count, self.mean, self.m2])
        gathered = [torch.zeros_like(mine) for _ in range(distributed.world_size())]
        torch.distributed.all_gather(gathered, mine)
        for mine_part in (self.count, self.mean, self.m2):
            mine_part.zero_()
        for other in gathered:
            self.merge(other[0], other[1], other[2])

    @property
    def std(self) -> Tensor:
        return (self.m2 / self.count.clamp_min(1.0)).sqrt()

    def result(self) -> dict[str, Tensor]:
        if float(self.count.min()) == 0:
            raise StatsError("no latent frames were seen: cannot compute statistics")
        return {"mean": self.mean.float(), "std": self.std.float(),
                "count": self.count.float()}


def save_stats(path: str | Path, stats: dict[str, Tensor], **metadata: Any) -> Path:
    """Write ``mean``/``std``/``count`` ``(dim,)`` and JSON-able ``metadata``."""
    from audio_core.files import save_safetensors

    meta = {"format": STATS_FORMAT, **{k: json.dumps(v) for k, v in metadata.items()}}
    return save_safetensors(stats, path, metadata=meta)


def is_stats_output(path: Path) -> bool:
    """True for an earlier output of ``audio-core stats``: a statistics file, or the
    ``.json`` summary beside one (which ``stats`` may replace without ``--overwrite``)."""
    if path.suffix == ".json":
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(summary, dict) and {"fingerprint", "latents", "out"} <= summary.keys()
    try:
        load_stats(path)
    except StatsError:
        return False
    return True


def load_stats(path: str | Path, dim: int | None = None) -> tuple[dict[str, Tensor],
                                                                   dict[str, Any]]:
    """``({mean, std, count}, metadata)`` of a statistics file; :class:`StatsError` naming
    the file when it is missing, not a statistics file or of another width than ``dim``."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise StatsError(f"latent statistics file {path} does not exist (make it with "
                         f"`audio-core stats MODEL DATA {path}`)")
    check_readable(path, "latent statistics file")  # not "not a statistics file"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise StatsError(f"{path} is not a latent statistics file: {exc}") from exc
    if meta.get("format") != STATS_FORMAT or not {"mean", "std"} <= tensors.keys():
        raise StatsError(f"{path} is not a latent statistics file (expected safetensors "
                         f"with mean/std written by `audio-core stats`)")
    mean, std = tensors["mean"].float(), tensors["std"].float()
    if mean.ndim != 1 or mean.shape != std.shape:
        raise StatsError(f"{path}: mean {tuple(mean.shape)} and std {tuple(std.shape)} must "
                         f"be equal 1-D shapes")
    if dim is not None and mean.shape[0] != dim:
        raise StatsError(f"{path} holds statistics of {mean.shape[0]} latent channels, the "
                         f"model's latent has {dim}")
    if not torch.isfinite(mean).all() or not (std > 0).all():
        raise StatsError(f"{path}: statistics must be finite with std > 0")
    extra = {k: json.loads(v) for k, v in meta.items() if k != "format"}
    return {"mean": mean, "std": std, **({"count": tensors["count"]} if "count" in tensors
                                         else {})}, extra
