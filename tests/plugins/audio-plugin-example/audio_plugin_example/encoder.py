"""A frame encoder: one strided convolution from waveform to latent frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from audio_core.contracts.components import Encoder


class FrameEncoder(nn.Module, Encoder):
    """Waveform ``(batch, channels, time)`` -> latent ``(batch, dim, frames)``.

    Each frame is a learned projection of ``hop_length`` consecutive samples;
    ``frames = ceil(time / hop_length)`` (the waveform is zero-padded on the right).

    The encoder contract (:class:`audio_core.contracts.components.Encoder`): ``hop_length``
    (samples per latent frame) and ``dim`` (latent channels); deriving from it gives the
    defaults of ``num_frames``, ``frame_mask`` and ``intermediates``.
    """

    def __init__(self, dim: int = 16, hop_length: int = 160, channels: int = 1) -> None:
        super().__init__()
        if dim < 1 or hop_length < 1 or channels < 1:
            raise ValueError(f"dim, hop_length and channels must be >= 1, got "
                             f"{dim=}, {hop_length=}, {channels=}")
        self.dim, self.hop_length, self.channels = dim, hop_length, channels
        self.proj = nn.Conv1d(channels, dim, kernel_size=hop_length, stride=hop_length)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.ndim != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"expected a waveform (batch, {self.channels}, time), "
                             f"got shape {tuple(waveform.shape)}")
        pad = -waveform.shape[-1] % self.hop_length
        return self.proj(F.pad(waveform, (0, pad)))
