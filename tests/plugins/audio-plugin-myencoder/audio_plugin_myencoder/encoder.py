"""A custom frozen encoder for RAE decoders: the part a third party writes.

Subclass :class:`audio_core.models.frozen_encoder.FrozenEncoder`, pass it the ``hidden_size``
(feature width) and ``patch_size`` (input samples per token at ``input_rate``) of your
model, and implement ``features(windows)``. The base class does the RAE waveform
preprocessing (mono, resampling to 16 kHz, peak normalisation, ``max_duration`` windows)
and presents the result as audio-core's encoder contract (``(batch, dim, frames)`` with
``dim`` and ``hop_length``), so ``rae.autoencoder`` builds a decoder for it. Here the
"pretrained model" is a log-mel front end with a fixed random projection: the framework
builds it under ``run.seed``, identically on every rank and at every load.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from audio_core.audio.dsp import MelSpectrogram
from audio_core.models.frozen_encoder import FrozenEncoder


class MelProjectionEncoder(FrozenEncoder):
    """Windows ``(n, samples)`` at 16 kHz -> log-mel (``n_mels`` bands, one frame per
    ``patch_size`` samples) -> linear map to ``hidden_size`` -> ``(n, samples //
    patch_size, hidden_size)``."""

    def __init__(self, hidden_size: int = 48, patch_size: int = 160, n_mels: int = 40, *,
                 sample_rate: int = 16000, channels: int = 1,
                 max_duration: float | None = 1.0) -> None:
        super().__init__(hidden_size=hidden_size, patch_size=patch_size,
                         sample_rate=sample_rate, channels=channels, max_duration=max_duration)
        self.mel = MelSpectrogram(self.input_rate, n_fft=4 * patch_size, hop_length=patch_size,
                                  n_mels=n_mels, log="log")
        self.proj = nn.Linear(n_mels, hidden_size)

    def features(self, windows: Tensor) -> Tensor:
        frames = windows.shape[-1] // self.patch_size
        mel = self.mel(windows)[..., :frames]  # centred frames: one per patch
        return self.proj(rearrange(mel, "n m t -> n t m"))
