"""The contract of the ``augmentation`` kind this plugin adds to audio-core.

Annotations are strings: importing this module does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor


@runtime_checkable
class Augmentation(Protocol):
    """Waveform ``(batch, channels, time)`` -> waveform of the same shape, applied to each
    example with probability ``probability``."""

    probability: float

    def forward(self, audio: Tensor) -> Tensor: ...
