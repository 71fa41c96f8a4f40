"""``rae.griffin_lim``: core's Griffin-Lim vocoder (:mod:`audio_core.components.vocoders`)
on a natural-log mel with 80 bins, the vocoder of a ``rae.vit`` decoder with ``output:
spectrogram``. Any vocoder-kind component with ``forward(log_mel (batch, n_mels, frames),
length) -> (batch, 1, length)`` can take its place in ``model.vocoder``.
"""

from __future__ import annotations

from functools import partial

from audio_core.components.vocoders import GriffinLimVocoder as _GriffinLim

GriffinLimVocoder = partial(_GriffinLim, n_mels=80, scale="log")
