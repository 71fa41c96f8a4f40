"""Sample masks to frame masks: which frames of a latent or spectrogram hold real audio.

A batch's ``mask`` ``(batch, time)`` marks real samples (False: padding). Frames relate to
samples in one of three ways, one ``align`` each:

- ``"block"``: frame ``t`` covers samples ``[t * hop, (t + 1) * hop)`` (strided encoders,
  latents); it is real when any of them is (the input is padded on the right to whole
  frames);
- ``"center"``: frame ``t`` is centred on sample ``t * hop`` (a centred STFT); it is real
  when that sample is (the last sample for frames past the end);
- ``"nearest"``: ``frames`` spread evenly over the clip, frame ``t`` at sample
  ``floor(t * time / frames)`` (no ``hop_length`` needed).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.nn.functional import pad

Align = Literal["block", "center", "nearest"]


def frame_mask(mask: Tensor, frames: int, hop_length: int | None = None, *,
               align: Align = "block") -> Tensor:
    """Sample mask ``(batch, time)`` -> bool frame mask ``(batch, frames)`` (see the module
    docstring for ``align``; ``"block"`` and ``"center"`` need ``hop_length``)."""
    if mask.ndim != 2:
        raise ValueError(f"a sample mask is (batch, time), got shape {tuple(mask.shape)}")
    time = mask.shape[-1]
    if align == "nearest":
        idx = torch.arange(frames, device=mask.device) * time // max(frames, 1)
        return mask[:, idx.clamp_max(time - 1)].bool()
    if hop_length is None or hop_length < 1:
        raise ValueError(f"align={align!r} needs hop_length >= 1, got {hop_length}")
    if align == "center":
        idx = (torch.arange(frames, device=mask.device) * hop_length).clamp_max(time - 1)
        return mask[:, idx].bool()
    if align != "block":
        raise ValueError(f"align must be 'block', 'center' or 'nearest', got {align!r}")
    size = frames * hop_length
    real = pad(mask.float(), (0, max(size - time, 0)))[..., :size]
    return real.unflatten(-1, (frames, hop_length)).amax(-1) > 0
