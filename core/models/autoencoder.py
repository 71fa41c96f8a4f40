"""Encoder -> optional quantizer/bottleneck -> decoder, as one exportable module."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from audio_core.models.records import QuantizedResult


@dataclass
class AutoencoderOutput:
    """``reconstruction`` ``(batch, channels, time)``; ``latent`` ``(batch, dim, frames)``
    before the bottleneck; ``quantized`` the bottleneck's result (``None`` without one)."""

    reconstruction: Tensor
    latent: Tensor
    quantized: QuantizedResult | None


class AudioAutoencoder(nn.Module):
    """Waveform ``(batch, channels, time)`` -> latent -> waveform of the same length.

    ``encoder`` maps waveforms to ``(batch, dim, frames)`` and exposes ``hop_length``;
    ``quantizer`` (optional) returns a :class:`QuantizedResult`; ``decoder`` maps latents
    back to ``(batch, channels, time')``, which is trimmed or padded to the input length.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module,
                 quantizer: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder, self.quantizer, self.decoder = encoder, quantizer, decoder

    @property
    def hop_length(self) -> int:
        return int(self.encoder.hop_length)

    def encode(self, waveform: Tensor) -> QuantizedResult:
        """Waveform ``(batch, channels, time)`` -> bottleneck result (latent and codes)."""
        latent = self.encoder(waveform)
        return self.quantizer(latent) if self.quantizer is not None else QuantizedResult(latent)

    def decode(self, latent: Tensor, length: int | None = None) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> waveform ``(batch, channels, length)``."""
        out = self.decoder(latent)
        if length is not None:
            out = out[..., :length] if out.shape[-1] >= length else nn.functional.pad(
                out, (0, length - out.shape[-1]))
        return out

    def forward(self, waveform: Tensor) -> AutoencoderOutput:
        latent = self.encoder(waveform)
        quantized = self.quantizer(latent) if self.quantizer is not None else None
        code = quantized.latent if quantized is not None else latent
        return AutoencoderOutput(self.decode(code, waveform.shape[-1]), latent, quantized)
