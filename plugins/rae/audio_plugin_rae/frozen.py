"""The base of every RAE frozen encoder, now in core
(:class:`audio_core.models.frozen_encoder.FrozenEncoder`); re-exported here so existing
``from audio_plugin_rae.frozen import FrozenEncoder`` keeps working.

``tokens_per_step`` (tokens sharing one time step, e.g. the frequency rows of a spectrogram
patch grid) and ``window_frames`` are what the RAE model hands its decoder.
"""

from audio_core.models.frozen_encoder import (
    NORMALIZATIONS,
    EncoderGeometryError,
    FrozenEncoder,
    normalize_waveform,
)

__all__ = ["NORMALIZATIONS", "EncoderGeometryError", "FrozenEncoder", "normalize_waveform"]
