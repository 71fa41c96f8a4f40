"""Chunk-by-chunk encoding and decoding of a causal autoencoder or codec.

A model streams when its encoder and decoder implement the streaming protocols below
(soundstream's causal SEANet pair does): the encoder turns each chunk of any length into
the latent frames of the hops it completes and keeps the rest in its state; the decoder
turns latent frames into ``frames * hop_length`` samples, carrying its context. The
concatenated output equals the offline one up to float rounding. Models whose encoder or
decoder sees the future (non-causal convolutions, EnCodec's 48 kHz overlapping windows,
DAC) do not stream: :func:`streaming_parts` raises :class:`StreamingError` naming the part;
encode such audio whole or with the chunked, context-padded ``audio-core encode``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, cast, runtime_checkable

import torch
from torch import Tensor

from audio_core.errors import AudioCoreError


class StreamingError(AudioCoreError, TypeError):
    """The model cannot encode or decode chunk by chunk."""


@runtime_checkable
class StreamingEncoder(Protocol):
    """A causal encoder that keeps its context in a state object between chunks."""

    def stream_state(self) -> Any:
        """A fresh state for one stream (one batch of signals)."""

    def stream(self, chunk: Tensor, state: Any) -> Tensor:
        """Waveform chunk ``(batch, channels, n)``, any ``n`` -> latent ``(batch, dim,
        frames)`` of the hops completed so far (possibly 0 frames)."""
        ...

    def flush(self, state: Any) -> Tensor:
        """End of stream: the pending partial hop, zero-padded (``(batch, dim, 0 or 1)``)."""
        ...


@runtime_checkable
class StreamingDecoder(Protocol):
    """A causal decoder that keeps its context in a state object between chunks."""

    def stream_state(self) -> Any:
        """A fresh state for one stream."""

    def stream(self, latent: Tensor, state: Any) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> waveform ``(batch, channels, frames *
        hop_length)``."""
        ...


@runtime_checkable
class FlushingDecoder(StreamingDecoder, Protocol):
    """A streaming decoder that may hold samples back until the stream ends (EnCodec's
    reflect padding waits for the samples it reflects)."""

    def flush(self, state: Any) -> Tensor:
        """End of stream: the samples held back, ``(batch, channels, n)``, ``n >= 0``."""
        ...


def streaming_parts(model: Any) -> tuple[StreamingEncoder, StreamingDecoder]:
    """``model``'s encoder and decoder; :class:`StreamingError` unless both stream."""
    encoder, decoder = getattr(model, "encoder", None), getattr(model, "decoder", None)
    for role, part, protocol in (("encoder", encoder, StreamingEncoder),
                                 ("decoder", decoder, StreamingDecoder)):
        if not isinstance(part, protocol):
            raise StreamingError(
                f"{type(model).__name__} does not stream: its {role} "
                f"({type(part).__name__}) is not causal with a streaming state "
                f"(audio_core.models.streaming.Streaming{role.title()}); encode the whole "
                f"signal, or use `audio-core encode` (chunks with context)")
    return cast(StreamingEncoder, encoder), cast(StreamingDecoder, decoder)


def _quantizer(model: Any) -> Any:
    from audio_core.contracts.models import DiscreteQuantizer

    q = getattr(model, "quantizer", None)
    return q if isinstance(q, DiscreteQuantizer) else None


@torch.no_grad()
def encode_stream(model: Any, chunks: Iterable[Tensor],
                  n_quantizers: int | None = None) -> Iterator[Tensor]:
    """Encode waveform chunks ``(batch, channels, n_i)`` one after the other.

    Yields, per chunk and once more at the end (the zero-padded last partial hop), the
    codes ``(batch, n, frames)`` (int64) of a codec, else the latent ``(batch, dim,
    frames)`` that ``model.encode`` gives; ``frames`` may be 0. Concatenated over the last
    axis they equal the offline ``encode_codes``/``encode`` of the whole signal.
    """
    encoder, _ = streaming_parts(model)
    quantizer = _quantizer(model)
    state = encoder.stream_state()

    def emit(latent: Tensor) -> Tensor:
        if quantizer is not None:
            if latent.shape[-1] == 0:
                n = n_quantizers or quantizer.num_codebooks
                return torch.zeros(latent.shape[0], n, 0, dtype=torch.long,
                                   device=latent.device)
            return quantizer.encode(latent, n_quantizers=n_quantizers)
        if latent.shape[-1] == 0:
            return latent
        result = model.bottleneck(latent)
        return result.latent if result is not None else latent

    for chunk in chunks:
        yield emit(encoder.stream(model._place(chunk), state))
    yield emit(encoder.flush(state))


@torch.no_grad()
def decode_stream(model: Any, chunks: Iterable[Tensor]) -> Iterator[Tensor]:
    """Decode chunks of codes ``(batch, n, frames_i)`` (integer) or latents ``(batch, dim,
    frames_i)`` one after the other; yields ``(batch, channels, frames_i * hop_length)``
    per chunk (a :class:`FlushingDecoder` fewer at the start, and what it held back once
    more at the end). Concatenated they equal the offline ``decode_codes``/``decode`` (trim
    the result to the signal's length yourself: the stream does not know where it ends)."""
    _, decoder = streaming_parts(model)
    quantizer = _quantizer(model)
    state = decoder.stream_state()
    for chunk in chunks:
        chunk = model._place(chunk)
        if chunk.shape[-1] == 0:
            yield chunk.new_zeros(chunk.shape[0], model.channels, 0, dtype=torch.float32)
            continue
        if not chunk.is_floating_point():
            if quantizer is None:
                raise StreamingError(f"{type(model).__name__} has no discrete codes: "
                                     f"decode_stream takes latents (float), got {chunk.dtype}")
            chunk = quantizer.decode(chunk)
        yield decoder.stream(chunk, state)
    if isinstance(decoder, FlushingDecoder):
        yield decoder.flush(state)
