"""Encoder -> optional quantizer/bottleneck -> decoder, as one exportable module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from audio_core.models.records import QuantizedResult


@dataclass
class AutoencoderOutput:
    """``reconstruction`` ``(batch, channels, time)``; ``latent`` ``(batch, dim, frames)``
    before the bottleneck; ``quantized`` the bottleneck's result (``None`` without one);
    ``intermediates``: what the components exposed from this forward for losses, keyed
    ``"<role>.<name>"`` (e.g. ``"decoder.stages"``; see :meth:`AudioAutoencoder.forward`)."""

    reconstruction: Tensor
    latent: Tensor
    quantized: QuantizedResult | None
    intermediates: dict[str, Any] = field(default_factory=dict)


class AudioAutoencoder(nn.Module):
    """Waveform ``(batch, channels, time)`` -> latent -> waveform of the same length.

    ``encoder`` maps waveforms to ``(batch, dim, frames)`` and exposes ``hop_length``;
    ``quantizer`` (optional) returns a :class:`QuantizedResult`; ``decoder`` maps latents
    back to ``(batch, channels, time')``, which is trimmed or padded to the input length.

    Discrete codecs: a quantizer that produces codes also implements the codec contract
    used by :meth:`encode_codes`/:meth:`decode_codes` and the token CLI:

    - ``forward(latent, n_quantizers=None) -> QuantizedResult`` (fewer codebooks = lower
      bitrate),
    - ``encode(latent, n_quantizers=None) -> codes`` int64 ``(batch, codebooks, frames)``,
    - ``decode(codes) -> latent`` ``(batch, dim, frames)`` (any leading subset of codebooks),
    - attributes ``num_codebooks`` and ``codebook_bits`` (bits per code).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module,
                 quantizer: nn.Module | None = None, sample_rate: int | None = None) -> None:
        super().__init__()
        self.encoder, self.quantizer, self.decoder = encoder, quantizer, decoder
        self.sample_rate = sample_rate

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
        """Waveform -> :class:`AutoencoderOutput`. A component with an ``intermediates()``
        method (returning a dict, emptied by the call) contributes what its forward kept to
        ``output.intermediates`` under ``"<role>.<key>"``: losses that declare
        ``wants_output = True`` receive the output and read them there."""
        latent = self.encoder(waveform)
        quantized = self.quantizer(latent) if self.quantizer is not None else None
        code = quantized.latent if quantized is not None else latent
        recon = self.decode(code, waveform.shape[-1])
        return AutoencoderOutput(recon, latent, quantized, self._intermediates())

    def _intermediates(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for role in ("encoder", "quantizer", "decoder"):
            take = getattr(getattr(self, role), "intermediates", None)
            if callable(take):
                out.update({f"{role}.{key}": value for key, value in take().items()})
        return out

    # -- codec contract -----------------------------------------------------------------
    def codec_spec(self) -> dict[str, int | bool]:
        """The code grid (see :func:`audio_core.inference.codec.codec_info`): samples per
        frame, codebooks, bits per code; residual codebooks are ``scalable`` (any leading
        subset decodes). ``TypeError`` without a discrete quantizer."""
        q = self._codec()
        return {"hop_length": self.hop_length, "num_codebooks": int(q.num_codebooks),
                "codebook_bits": int(q.codebook_bits), "scalable": True}

    @property
    def frame_rate(self) -> float:
        """Latent frames per second at :attr:`sample_rate`."""
        if self.sample_rate is None:
            raise ValueError("frame_rate needs the model's sample_rate")
        return float(self.sample_rate) / self.hop_length

    def _codec(self) -> nn.Module:
        q = self.quantizer
        needed = ("encode", "decode", "num_codebooks", "codebook_bits")
        if q is None or not all(hasattr(q, a) for a in needed):
            raise TypeError(f"this model ({type(self).__name__} with quantizer "
                            f"{type(q).__name__}) produces no discrete codes: token "
                            f"encode/decode and --bandwidth/--n-quantizers need a quantizer "
                            f"implementing {', '.join(needed)}")
        return q

    def encode_codes(self, waveform: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Waveform ``(batch, channels, time)`` -> codes int64 ``(batch, codebooks, frames)``."""
        return self._codec().encode(self.encoder(waveform), n_quantizers=n_quantizers)

    def decode_codes(self, codes: Tensor, length: int | None = None) -> Tensor:
        """Codes ``(batch, codebooks, frames)`` -> waveform ``(batch, channels, length)``."""
        return self.decode(self._codec().decode(codes), length)
