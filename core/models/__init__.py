"""Model containers and the records components exchange (shapes in each docstring)."""

from audio_core.models.autoencoder import AudioAutoencoder, AutoencoderOutput
from audio_core.models.records import LossOutput, QuantizedResult

__all__ = ["AudioAutoencoder", "AutoencoderOutput", "LossOutput", "QuantizedResult"]
