"""Spectral DSP in torch: STFT/iSTFT, mel filterbanks, dB scaling, Griffin-Lim, mel inversion.

Everything is batched over arbitrary leading dimensions, runs on the input's device and matches
librosa 0.11 conventions (periodic windows from ``scipy.signal.get_window``, ``center=True`` with
``pad_mode="constant"``, unnormalised FFT, Slaney mel filters). Half-precision input
(float16/bfloat16) is computed and returned in float32; float64 stays float64.
"""


from audio_core.audio.dsp._common import get_window
from audio_core.audio.dsp.db import (
    amplitude_to_db,
    clamp_db,
    db_to_amplitude,
    db_to_power,
    power_to_db,
)
from audio_core.audio.dsp.griffin_lim import griffin_lim, spectral_convergence
from audio_core.audio.dsp.mel import mel_filterbank, mel_to_linear
from audio_core.audio.dsp.modules import MelSpectrogram, Spectrogram
from audio_core.audio.dsp.stft import istft, stft

__all__ = [
    "MelSpectrogram",
    "Spectrogram",
    "amplitude_to_db",
    "clamp_db",
    "db_to_amplitude",
    "db_to_power",
    "get_window",
    "griffin_lim",
    "istft",
    "mel_filterbank",
    "mel_to_linear",
    "power_to_db",
    "spectral_convergence",
    "stft",
]
