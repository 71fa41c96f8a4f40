"""Chunk-by-chunk encoding and decoding with carried state.

A :class:`StreamingState` holds, for each stateful layer, what the next chunk needs from
the past: the last input samples of a causal convolution, the overlapping tail of a
transposed convolution, an LSTM's ``(h, c)``, cached attention keys, and the encoder's
not-yet-whole hop of input samples. Layers read and write it keyed by themselves. It also
keeps each convolution's kernel, computed (weight norm) and laid out once per stream
rather than once per chunk.

:class:`StreamingCodec` drives a causal encoder, an optional quantizer and a causal decoder::

    codec = StreamingCodec(encoder, decoder, quantizer)
    state = codec.init_state()
    for chunk in chunks:                      # (batch, channels, any length)
        audio = codec.step(chunk, state)      # (batch, channels, whole hops so far)
    audio = torch.cat([*outputs, codec.flush(state)], dim=-1)

The concatenated output equals the offline ``decoder(quantizer(encoder(x)))`` within float
tolerance, for any chunk sizes (not only multiples of the hop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn


class StreamingState:
    """Per-layer carried context for one stream (one batch of signals)."""

    def __init__(self) -> None:
        self._buffers: dict[int, tuple[nn.Module, Any]] = {}
        self._constants: dict[int, tuple[nn.Module, Any]] = {}

    def get(self, layer: nn.Module, default: Callable[[], Any] | None = None) -> Any:
        """``layer``'s carried value; ``default()`` (or ``None``) before the first chunk."""
        if id(layer) in self._buffers:
            return self._buffers[id(layer)][1]
        return default() if default is not None else None

    def __setitem__(self, layer: nn.Module, value: Any) -> None:
        self._buffers[id(layer)] = (layer, value)  # keep the layer alive: ids stay unique

    def constant(self, layer: nn.Module, make: Callable[[], Any]) -> Any:
        """A value ``layer`` needs unchanged on every chunk (its kernel, laid out for the
        convolution), made by ``make()`` on the first chunk and reused after. The weights
        must not change during a stream."""
        if id(layer) not in self._constants:
            self._constants[id(layer)] = (layer, make())
        return self._constants[id(layer)][1]

    def __contains__(self, layer: nn.Module) -> bool:
        return id(layer) in self._buffers

    def __len__(self) -> int:
        return len(self._buffers)


class StreamingCodec(nn.Module):
    """Causal ``encoder`` -> optional ``quantizer`` -> causal ``decoder``, chunk by chunk.

    ``encoder`` and ``decoder`` must provide ``stream(x, state)`` (and the encoder
    ``flush(state)``), as :class:`~audio_plugin_soundstream.seanet.SEANetEncoder` and
    :class:`~audio_plugin_soundstream.seanet.SEANetDecoder` do. The quantizer works frame by
    frame in eval mode, so it needs no state; ``n_quantizers`` limits its codebooks.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, quantizer: nn.Module | None = None,
                 n_quantizers: int | None = None) -> None:
        super().__init__()
        self.encoder, self.decoder, self.quantizer = encoder, decoder, quantizer
        self.n_quantizers = n_quantizers

    @classmethod
    def from_autoencoder(cls, model: nn.Module, n_quantizers: int | None = None
                         ) -> StreamingCodec:
        """Wrap an ``AudioAutoencoder`` (or anything with encoder/decoder/quantizer)."""
        return cls(model.encoder, model.decoder, getattr(model, "quantizer", None), n_quantizers)

    def init_state(self) -> StreamingState:
        return StreamingState()

    def encode_step(self, chunk: Tensor, state: StreamingState) -> Tensor:
        """Waveform chunk ``(batch, channels, n)`` -> latent ``(batch, dim, frames)`` of the
        hops it completes (possibly zero frames)."""
        return self.encoder.stream(chunk, state)

    def quantize(self, latent: Tensor) -> Tensor:
        """Latent frames -> quantized latent frames (identity without a quantizer)."""
        if self.quantizer is None or latent.shape[-1] == 0:
            return latent
        codes = self.quantizer.encode(latent, n_quantizers=self.n_quantizers)
        return self.quantizer.decode(codes)

    def decode_step(self, latent: Tensor, state: StreamingState) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> waveform ``(batch, channels, frames * hop)``."""
        return self.decoder.stream(latent, state)

    @torch.no_grad()
    def step(self, chunk: Tensor, state: StreamingState) -> Tensor:
        """Waveform chunk in -> the waveform of every hop completed so far out."""
        return self.decode_step(self.quantize(self.encode_step(chunk, state)), state)

    @torch.no_grad()
    def flush(self, state: StreamingState) -> Tensor:
        """End of stream: zero-pad the pending partial hop (as offline encoding does)."""
        return self.decode_step(self.quantize(self.encoder.flush(state)), state)

    @torch.no_grad()
    def run(self, chunks: Iterable[Tensor]) -> Tensor:
        """All ``chunks`` through one stream, concatenated: ``(batch, channels, hops * hop)``."""
        state = self.init_state()
        outputs = [self.step(c, state) for c in chunks]
        return torch.cat([*outputs, self.flush(state)], dim=-1)
