"""SpecAugment time and frequency masking (Park et al. 2019), batched, training only."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _band_mask(batch: int, size: int, masks: int, max_width: int, device: torch.device,
               generator: torch.Generator | None) -> Tensor:
    """``(batch, size)`` bool: ``masks`` bands of width ``U[0, max_width]`` at random starts."""
    if masks == 0 or max_width == 0:
        return torch.zeros(batch, size, dtype=torch.bool, device=device)
    width = torch.randint(0, max_width + 1, (batch, masks, 1), generator=generator)
    start = (torch.rand(batch, masks, 1, generator=generator) * (size - width + 1)).long()
    pos = torch.arange(size)
    return ((pos >= start) & (pos < start + width)).any(1).to(device)


class SpecAugment(nn.Module):
    """Mask ``time_masks`` bands of up to ``time_width`` frames and ``freq_masks`` bands of
    up to ``freq_width`` bins of a spectrogram ``(batch, n_bins, frames)`` with ``fill``
    (e.g. the dB floor). Identity in eval mode. ``generator`` draws on the CPU."""

    def __init__(self, time_masks: int = 2, time_width: int = 40, freq_masks: int = 2,
                 freq_width: int = 16, fill: float = -80.0) -> None:
        super().__init__()
        self.time_masks, self.time_width = int(time_masks), int(time_width)
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.fill = float(fill)

    def forward(self, spec: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not self.training:
            return spec
        b, bins, frames = spec.shape
        freq = _band_mask(b, bins, self.freq_masks, min(self.freq_width, bins), spec.device,
                          generator)
        time = _band_mask(b, frames, self.time_masks, min(self.time_width, frames), spec.device,
                          generator)
        masked = freq[:, :, None] | time[:, None, :]
        return spec.masked_fill(masked, self.fill)

    def extra_repr(self) -> str:
        return (f"time_masks={self.time_masks}, time_width={self.time_width}, "
                f"freq_masks={self.freq_masks}, freq_width={self.freq_width}, fill={self.fill}")
