"""Augmentations: components of the ``augmentation`` kind (:mod:`.contracts`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RandomGain(nn.Module):
    """Scale each example of ``(batch, channels, time)`` by a gain drawn uniformly in
    ``[min_db, max_db]`` decibels, with probability ``probability`` (else unchanged)."""

    def __init__(self, min_db: float = -6.0, max_db: float = 6.0,
                 probability: float = 1.0) -> None:
        super().__init__()
        if not min_db <= max_db or not 0.0 <= probability <= 1.0:
            raise ValueError(f"need min_db <= max_db and 0 <= probability <= 1, got "
                             f"{min_db=}, {max_db=}, {probability=}")
        self.min_db, self.max_db, self.probability = min_db, max_db, probability

    def forward(self, audio: Tensor) -> Tensor:
        batch = audio.shape[0]
        db = torch.empty(batch, 1, 1, device=audio.device).uniform_(self.min_db, self.max_db)
        apply = torch.rand(batch, 1, 1, device=audio.device) < self.probability
        return torch.where(apply, audio * 10 ** (db / 20), audio)
