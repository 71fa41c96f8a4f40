"""SoundStream's auxiliary decoder objective (``soundstream.aux``).

The channel mean of each decoder upsampling stage's output ``(batch, width_i, time_i)``
should approximate the target waveform downsampled to that stage's rate (average pooling
by ``factor_i = time / time_i``, channels averaged too). The loss is the L1 distance,
averaged over stages.

How the loss sees the decoder's intermediates: a
:class:`~audio_plugin_soundstream.seanet.SEANetDecoder` built with ``aux_outputs: true``
keeps its stage outputs from each training forward and hands them to the model's output
record (``output.intermediates["decoder.stages"]`` and ``["decoder.stage_factors"]``, see
:meth:`audio_core.models.AudioAutoencoder.forward`); this loss declares
``wants_output = True``, so audio-core passes it that record.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import reduce
from torch import Tensor, nn

from audio_core.contracts.records import LossOutput


def downsample(waveform: Tensor, factor: int, length: int) -> Tensor:
    """``(batch, channels, time)`` -> channel mean average-pooled by ``factor``:
    ``(batch, 1, length)`` (zero-padded on the right to ``length * factor`` samples)."""
    mono = reduce(waveform, "b c t -> b 1 t", "mean")
    need = length * factor
    mono = F.pad(mono, (0, max(0, need - mono.shape[-1])))[..., :need]
    return F.avg_pool1d(mono, factor, factor) if factor > 1 else mono


class DecoderStageLoss(nn.Module):
    """L1 between each decoder stage's channel mean and the downsampled target, averaged
    over stages. Needs ``soundstream.decoder`` with ``aux_outputs: true``."""

    name = "aux"
    wants_output = True

    def forward(self, estimate: Tensor, reference: Tensor, mask: Tensor | None = None, *,
                output: Any = None) -> LossOutput:
        found = getattr(output, "intermediates", {})
        if "decoder.stages" not in found:
            raise RuntimeError("soundstream.aux found no decoder stage outputs in the model "
                               "output: use soundstream.decoder with params.aux_outputs: "
                               "true, in a training forward of an AudioAutoencoder")
        stages, factors = found["decoder.stages"], found["decoder.stage_factors"]
        if stages and stages[0].shape[0] != reference.shape[0]:
            raise RuntimeError(f"soundstream.aux: decoder stages have batch "
                               f"{stages[0].shape[0]} but the target has {reference.shape[0]}")
        parts = {}
        for i, (stage, factor) in enumerate(zip(stages, factors, strict=True)):
            length = -(-reference.shape[-1] // factor)  # ceil: the stage may run longer
            mean = reduce(stage[..., :length].float(), "b c t -> b 1 t", "mean")
            target = downsample(reference.float(), factor, length)
            err = (mean - target).abs()
            if mask is not None:
                m = downsample(mask[:, None].float(), factor, length)
                err = (err * m).sum() / m.sum().clamp_min(1.0)
            parts[f"stage{i}"] = err.mean()
        value = torch.stack(list(parts.values())).mean()
        return LossOutput(value, {k: v.detach() for k, v in parts.items()})
