"""The reconstruction metrics a validation loop reports for autoencoders and codecs."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from audio_core.metrics.spectral import multi_resolution_mel_distance
from audio_core.metrics.waveform import l1_distance, si_sdr


@torch.no_grad()
def reconstruction_metrics(
    estimate: Tensor,
    reference: Tensor,
    sample_rate: int,
    mask: Tensor | None = None,
    **mel_kwargs: Any,
) -> dict[str, float]:
    """Batch means of ``si_sdr`` (dB), ``mel_distance`` (multi-resolution) and ``l1``.

    ``estimate``/``reference``: (batch, time) or (batch, channels, time) of equal shape;
    ``mask``: bool (batch, time), True on valid samples. ``mel_kwargs`` go to
    :func:`multi_resolution_mel_distance`. Feed the result to
    :class:`MetricAccumulator` with ``weight=batch``. One device sync in total.
    """
    values = torch.stack([
        si_sdr(estimate, reference, mask=mask).mean(),
        multi_resolution_mel_distance(estimate, reference, sample_rate, mask=mask,
                                      **mel_kwargs).mean(),
        l1_distance(estimate, reference, mask=mask).mean(),
    ]).tolist()
    return dict(zip(("si_sdr", "mel_distance", "l1"), values, strict=True))
