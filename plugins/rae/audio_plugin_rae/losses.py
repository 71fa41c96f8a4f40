"""``rae.mel_l1``: the training loss of a ``rae.vit`` decoder with spectrogram output.

The decoder predicts log-mel patches; the waveform comes from a frozen vocoder and carries
no gradient. The ``rae.autoencoder`` model keeps the prediction and the input's log-mel in
``output.intermediates`` (``decoder.mel``, ``decoder.mel_target``, ``(batch, n_mels,
frames)``); this loss is their L1 distance, over real frames only.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from audio_core.audio.masks import frame_mask
from audio_core.contracts.records import LossOutput


class MelPatchLoss(nn.Module):
    """L1 between predicted and target log-mel (natural log of mel power), padding masked.
    Needs the model's training output (``wants_output``)."""

    name = "mel_l1"
    wants_output = True

    def forward(self, estimate: Tensor, reference: Tensor, mask: Tensor | None = None, *,
                output: Any = None) -> LossOutput:
        found = getattr(output, "intermediates", {}) or {}
        if "decoder.mel" not in found or "decoder.mel_target" not in found:
            raise ValueError("rae.mel_l1 trains a rae.vit decoder with output: "
                             "spectrogram in a rae.autoencoder model (it reads decoder.mel and "
                             f"decoder.mel_target from the model output; got "
                             f"{sorted(found) or 'no intermediates'})")
        pred, target = found["decoder.mel"].float(), found["decoder.mel_target"].float()
        error = (pred - target).abs()
        if mask is None:
            return LossOutput(error.mean())
        weight = frame_mask(mask, error.shape[-1], align="nearest")[:, None].expand_as(error)
        weight = weight.float()
        return LossOutput((error * weight).sum() / weight.sum().clamp_min(1.0))
