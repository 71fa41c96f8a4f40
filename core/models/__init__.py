"""Models (whole inference pipelines), their contracts and the records components exchange
(shapes in each docstring)."""

from audio_core.contracts.models import (
    AudioModel,
    Autoencoder,
    Codec,
    CodecSpec,
    DiscreteQuantizer,
    Generator,
    Quantizer,
    Reconstructor,
    capabilities,
    is_codec,
)
from audio_core.contracts.records import Conditioning, LossOutput, QuantizedResult
from audio_core.models.autoencoder import AudioAutoencoder, AutoencoderOutput

__all__ = [
    "AudioAutoencoder",
    "AudioModel",
    "Autoencoder",
    "AutoencoderOutput",
    "Codec",
    "CodecSpec",
    "Conditioning",
    "DiscreteQuantizer",
    "Generator",
    "LossOutput",
    "QuantizedResult",
    "Quantizer",
    "Reconstructor",
    "capabilities",
    "is_codec",
]
