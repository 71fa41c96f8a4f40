"""``core.latents``: pre-encoded latents (``audio-core latents``) as a training dataset.

Items: ``latent`` float32 ``(latent_dim, frames)``, ``mask`` bool ``(frames,)``, and the
source item's ``label``, ``text``, ``path``, plus ``offset``/``length`` in frames. Crops of
``segment_seconds`` (converted with the source model's frame rate; ``None``: whole items)
start at offsets drawn from (seed, rank, epoch, index) as audio crops do; shorter items are
zero-padded and masked.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import Dataset

from audio_core.data.base import DatasetError, EpochRankMixin, item_rng
from audio_core.data.latent_model import LatentModelMixin
from audio_core.latents.store import LatentsError, ShardReader, read_index

__all__ = ["LatentDataset"]


class LatentDataset(LatentModelMixin, EpochRankMixin, Dataset):
    """Latents under ``root`` (an ``audio-core latents`` output folder).

    ``expected_fingerprint`` (optional) must equal the source model's fingerprint recorded
    in the index. ``classes`` are the source dataset's. See the module docstring.
    """

    def __init__(self, root: str | os.PathLike, *, segment_seconds: float | None = 1.0,
                 random_crop: bool = True, seed: int = 0,
                 expected_fingerprint: str | None = None) -> None:
        try:
            index = read_index(root)
        except LatentsError as exc:
            raise DatasetError(str(exc)) from exc
        self.root, self.model = str(root), index["model"]
        self.check_fingerprint(expected_fingerprint, f"latents in {root}")
        self.items = index["items"]
        if not self.items:
            raise DatasetError(f"latents folder {root} holds no items")
        self.classes = list(index.get("dataset", {}).get("classes", []))
        self.frame_rate = float(self.model["frame_rate"])
        if segment_seconds is not None and segment_seconds <= 0:
            raise DatasetError(f"segment_seconds must be positive, got {segment_seconds!r}")
        self.segment_frames = None if segment_seconds is None else \
            max(1, round(segment_seconds * self.frame_rate))
        self.random_crop, self.seed = random_crop, int(seed)
        self.bad_files: list = []
        self._reader = ShardReader(root)

    @property
    def units_per_item(self) -> tuple[str, float]:
        """Throughput unit: seconds of source audio per crop."""
        if self.segment_frames is None:
            return "items", 1.0
        return "audio_s", self.segment_frames / self.frame_rate

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.items)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        record = self.items[index]
        total, seg = int(record["frames"]), self.segment_frames
        if seg is None:
            offset, take = 0, total
        else:
            rng = item_rng(self.seed, self.rank, self.epoch, index)
            offset = int(rng.integers(0, total - seg + 1)) if self.random_crop and \
                total > seg else 0
            take = min(seg, total - offset)
        latent = self._reader.read(record, offset, offset + take).float()
        size = take if seg is None else seg
        mask = torch.zeros(size, dtype=torch.bool)
        mask[:take] = True
        if take < size:
            latent = torch.nn.functional.pad(latent, (0, size - take))
        return {"latent": latent.contiguous(), "mask": mask, "label": int(record["label"]),
                "text": str(record.get("text", "")), "path": str(record["path"]),
                "offset": offset, "length": take, "seconds_start": offset / self.frame_rate,
                "seconds_total": total / self.frame_rate}
