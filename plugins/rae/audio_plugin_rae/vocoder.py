"""``rae.griffin_lim``: core's Griffin-Lim vocoder (:mod:`audio_core.components.vocoders`)
on a natural-log mel with 80 bins, the vocoder of a ``rae.vit`` decoder with ``output:
spectrogram``. Any vocoder-kind component with ``forward(log_mel (batch, n_mels, frames),
length) -> (batch, 1, length)`` can take its place in ``model.vocoder``.
"""

from __future__ import annotations

from audio_core.components.vocoders import GriffinLimVocoder as CoreGriffinLim


class GriffinLimVocoder(CoreGriffinLim):
    """Natural-log mel power ``(batch, 80 by default, frames)`` -> waveform ``(batch, 1,
    length)``."""

    default_n_mels = 80
    default_scale = "log"
