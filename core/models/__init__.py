"""Models (whole inference pipelines), their contracts and the records components exchange
(shapes in each docstring)."""

from audio_core.models.autoencoder import AudioAutoencoder, AutoencoderOutput
from audio_core.models.contracts import (
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
from audio_core.models.records import Conditioning, LossOutput, QuantizedResult

__all__ = ["AudioAutoencoder", "AudioModel", "AutoencoderOutput", "Autoencoder", "Codec",
           "CodecSpec", "Conditioning", "DiscreteQuantizer", "Generator", "LossOutput",
           "QuantizedResult", "Quantizer", "Reconstructor", "capabilities", "is_codec"]
