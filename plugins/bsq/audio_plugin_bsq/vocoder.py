"""``bsq.griffin_lim``: core's Griffin-Lim vocoder (:mod:`audio_core.components.vocoders`)
on a dB power mel with 128 bins, the default of a ``bsq.tokenizer`` model's
``model.vocoder`` slot. Any vocoder-kind component mapping a dB mel ``(batch, n_mels,
frames)`` to a waveform ``(batch, 1, time)`` can take its place, e.g. a neural vocoder.
"""

from __future__ import annotations

from audio_core.components.vocoders import GriffinLimVocoder as CoreGriffinLim


class GriffinLimVocoder(CoreGriffinLim):
    """dB power mel ``(batch, 128 by default, frames)`` -> waveform ``(batch, 1, time)``."""

    default_n_mels = 128
    default_scale = "db"
