"""``core.autoencoder``: encoder -> optional quantizer/bottleneck -> decoder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from audio_core.audio.transforms import fit_length
from audio_core.contracts.components import Decoder, Encoder
from audio_core.contracts.models import (
    Autoencoder,
    Codec,
    CodecSpec,
    DiscreteQuantizer,
    Quantizer,
)
from audio_core.contracts.records import QuantizedResult


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


def audio_context(cfg: Any) -> dict[str, Any]:
    """What audio components receive from a run config: ``channels`` and ``sample_rate``."""
    return {"channels": cfg.data.channels, "sample_rate": cfg.data.sample_rate}


class AudioAutoencoder(Autoencoder, Codec):
    """Waveform ``(batch, channels, time)`` -> latent -> waveform of the same length.

    ``encoder`` maps waveforms to ``(batch, dim, frames)`` and exposes ``hop_length``;
    ``quantizer`` (optional) returns a :class:`QuantizedResult`; ``decoder`` maps latents
    ``(batch, latent_dim, frames)`` back to ``(batch, channels, time')``, trimmed or padded
    to the input length. With a :class:`~audio_core.contracts.models.DiscreteQuantizer` the
    model is also a codec (:meth:`encode_codes`, :meth:`decode_codes`, token files).
    """

    slots: ClassVar[dict[str, bool]] = {"encoder": True, "decoder": True, "quantizer": False}

    def __init__(self, encoder: Encoder | None, decoder: Decoder,
                 quantizer: Quantizer | None = None, *, sample_rate: int,
                 channels: int = 1) -> None:
        super().__init__(sample_rate=sample_rate, channels=channels)
        if encoder is not None:  # subclasses may hold it frozen instead
            self.encoder = encoder
        self.quantizer, self.decoder = quantizer, decoder

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False) -> AudioAutoencoder:
        from audio_core.models.build import build_slot

        ctx = audio_context(cfg)
        return cls(build_slot(cfg, registry, "encoder", **ctx),
                   build_slot(cfg, registry, "decoder", **ctx),
                   build_slot(cfg, registry, "quantizer", **ctx),
                   sample_rate=cfg.data.sample_rate, channels=cfg.data.channels)

    # -- geometry -----------------------------------------------------------------------
    @property
    def hop_length(self) -> int:
        return int(self.encoder_module().hop_length)

    @property
    def latent_dim(self) -> int:
        """Channels the decoder takes (after the bottleneck)."""
        dim = self.decoder.dim
        return int(dim if dim is not None else self.encoder_module().dim)

    def encoder_module(self) -> Encoder:
        return self.encoder

    # -- the autoencoder contract -------------------------------------------------------
    def encode_latent(self, waveform: Tensor) -> Tensor:
        """Encoder output ``(batch, dim, frames)``, before the bottleneck."""
        return self.encoder(waveform)

    def encode_stream(self, chunks: Iterable[Tensor], n_quantizers: int | None = None
                      ) -> Iterator[Tensor]:
        """Causal models: codes (a codec) or latents per waveform chunk ``(batch, channels,
        n)``, then the flushed last hop (:func:`audio_core.models.streaming.encode_stream`;
        a :class:`~audio_core.models.streaming.StreamingError` for non-causal models)."""
        from audio_core.models.streaming import encode_stream

        return encode_stream(self, chunks, n_quantizers)

    def decode_stream(self, chunks: Iterable[Tensor]) -> Iterator[Tensor]:
        """Causal models: waveform ``(batch, channels, frames * hop_length)`` per chunk of
        codes or latents (:func:`audio_core.models.streaming.decode_stream`)."""
        from audio_core.models.streaming import decode_stream

        return decode_stream(self, chunks)

    def augment(self, latent: Tensor) -> Tensor:
        """Training-time change of the encoder output before the bottleneck (none here)."""
        return latent

    def bottleneck(self, latent: Tensor) -> QuantizedResult | None:
        return self.quantizer(latent) if self.quantizer is not None else None

    def encode(self, waveform: Tensor) -> Tensor:
        """Waveform -> the latent the decoder takes ``(batch, latent_dim, frames)``: the
        bottleneck's output (quantized; a VAE's mean in eval mode)."""
        latent = self.encode_latent(waveform)
        result = self.bottleneck(latent)
        return result.latent if result is not None else latent

    def decode(self, latent: Tensor, length: int | None = None) -> Tensor:
        """Latent ``(batch, latent_dim, frames)`` -> waveform ``(batch, channels, length)``."""
        return fit_length(self.decoder(latent), length)

    def forward(self, waveform: Tensor) -> AutoencoderOutput:
        """Waveform -> :class:`AutoencoderOutput` (the training forward). What each
        component's ``intermediates()`` returns (a dict, emptied by the call) is in
        ``output.intermediates`` under ``"<role>.<key>"``: losses that declare
        ``wants_output = True`` receive the output and read them there."""
        latent = self.encode_latent(waveform)
        augmented = self.augment(latent)
        quantized = self.bottleneck(augmented)
        code = quantized.latent if quantized is not None else augmented
        recon = self.decode(code, waveform.shape[-1])
        return AutoencoderOutput(recon, latent, quantized, self._intermediates())

    @torch.no_grad()
    def reconstruct(self, waveform: Tensor) -> Tensor:
        return self(waveform).reconstruction

    def _intermediates(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        parts = {"encoder": self.encoder_module(), "quantizer": self.quantizer,
                 "decoder": self.decoder}
        for role, part in parts.items():
            if part is not None:
                out.update({f"{role}.{k}": v for k, v in part.intermediates().items()})
        return out

    # -- the codec contract -------------------------------------------------------------
    @property
    def has_codes(self) -> bool:
        return isinstance(self.quantizer, DiscreteQuantizer)

    def _codec(self) -> DiscreteQuantizer:
        if not isinstance(self.quantizer, DiscreteQuantizer):
            from audio_core.errors import CodecError

            raise CodecError(f"this model ({type(self).__name__} with quantizer "
                             f"{type(self.quantizer).__name__}) produces no discrete codes: "
                             f"token encode/decode and --bandwidth/--n-quantizers need a "
                             f"quantizer implementing audio_core.models.DiscreteQuantizer")
        return self.quantizer

    def codec_spec(self) -> CodecSpec:
        q = self._codec()
        return CodecSpec(self.hop_length, int(q.num_codebooks), int(q.codebook_bits),
                         bool(q.scalable))

    @torch.no_grad()
    def encode_codes(self, waveform: Tensor, n_quantizers: int | None = None) -> Tensor:
        return self._codec().encode(self.encode_latent(waveform), n_quantizers=n_quantizers)

    @torch.no_grad()
    def decode_codes(self, codes: Tensor, length: int | None = None) -> Tensor:
        return self.decode(self._codec().decode(codes), length)
