"""An audio-core model as an audio embedding for the Fréchet audio distance
(``core.codec_latent``): the encoder latents of an export or run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from einops import rearrange
from torch import Tensor

from audio_core.metrics.embeddings import AudioEmbedding, EmbeddingError, local_file


class CodecLatentEmbedding(AudioEmbedding):
    """Encoder latents ``(frames, dim)`` of the audio-core model (export or run folder) at
    local ``path``."""

    def __init__(self, path: str, ema: bool | None = None) -> None:
        from audio_core.contracts.models import Autoencoder
        from audio_core.models.loading import load

        self.model: Any = load(str(local_file(path, "codec embedding model")), ema=ema)
        if not isinstance(self.model, Autoencoder):
            raise EmbeddingError(f"the model at '{path}' ({type(self.model).__name__}) has no "
                                 f"encode(waveform); use an autoencoder or codec export")
        self.sample_rate, self.channels = int(self.model.sample_rate), int(self.model.channels)
        self.name, self.layer = f"codec_latent:{Path(path).name}", "encoder"

    def frames(self, mono: Tensor) -> Tensor:
        audio = mono[None, None].expand(1, self.channels, -1)
        latent = self.model.encode(audio)
        return rearrange(latent[0], "d f -> f d")
