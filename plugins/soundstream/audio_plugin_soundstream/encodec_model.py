"""``soundstream.encodec``: an RVQ codec with EnCodec's input handling.

On top of :class:`~audio_core.models.autoencoder.AudioAutoencoder` (encoder -> RVQ ->
decoder) it adds what EnCodec does around the networks:

- ``normalize``: each chunk is divided by its scale (RMS of the channel mean, ``+ 1e-8``)
  before encoding; the decoded chunk is multiplied back by it;
- ``chunk_length``/``chunk_stride`` (samples): the input is coded in chunks starting every
  ``chunk_stride`` samples, and decoded chunks are overlap-added with triangular weights.

:meth:`encode_frames` / :meth:`decode_frames` are EnCodec's ``encode`` / ``decode``
(codes ``(chunks, batch, n, frames)``, scales ``(chunks, batch)``). The codec contract
(:meth:`encode_codes`, :meth:`decode_codes`, token files) codes the whole input as one
chunk on the frame grid ``(batch, n, ceil(time / hop))``: with ``normalize`` the
encoder sees the normalised input and :meth:`decode_codes` returns unit-scale audio (the
scale is not a code). :meth:`reconstruct` runs the full chunked, scaled round trip.
Streaming (``encode_stream``/``decode_stream``) follows the codec contract too, for causal
networks without ``normalize`` (the scale is the RMS of the whole input).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from audio_core.models.autoencoder import AudioAutoencoder, AutoencoderOutput, audio_context
from audio_core.models.streaming import StreamingError, streaming_parts


def chunk_scale(chunk: Tensor) -> Tensor:
    """``(batch, channels, time)`` -> ``(batch, 1, 1)``: RMS of the channel mean + 1e-8."""
    mono = chunk.mean(dim=1, keepdim=True)
    return mono.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8


def overlap_add(chunks: list[Tensor], stride: int) -> Tensor:
    """Chunks ``(batch, channels, n_i)`` starting every ``stride`` samples -> their sum
    ``(batch, channels, stride * (len - 1) + n_last)`` weighted by a triangle of the first
    chunk's length (peak in the middle, never zero) and divided by the summed weights."""
    n = chunks[0].shape[-1]
    t = torch.linspace(0, 1, n + 2, dtype=chunks[0].dtype, device=chunks[0].device)[1:-1]
    weight = 0.5 - (t - 0.5).abs()
    total = stride * (len(chunks) - 1) + chunks[-1].shape[-1]
    out = chunks[0].new_zeros(*chunks[0].shape[:-1], total)
    norm = chunks[0].new_zeros(total)
    for i, chunk in enumerate(chunks):
        k = chunk.shape[-1]
        out[..., i * stride: i * stride + k] += weight[:k] * chunk
        norm[i * stride: i * stride + k] += weight[:k]
    return out / norm


class EncodecCodec(AudioAutoencoder):
    """Waveform ``(batch, channels, time)`` <-> RVQ codes, EnCodec style (module docstring).

    ``chunk_stride`` defaults to ``chunk_length`` (no overlap); both ``None``: one chunk.
    """

    def __init__(self, encoder: Any, decoder: Any, quantizer: Any, *, sample_rate: int,
                 channels: int, normalize: bool = False, chunk_length: int | None = None,
                 chunk_stride: int | None = None) -> None:
        super().__init__(encoder, decoder, quantizer, sample_rate=sample_rate,
                         channels=channels)
        bad_length = chunk_length is not None and chunk_length < 1
        bad_stride = chunk_stride is not None and (chunk_length is None or chunk_stride < 1)
        if bad_length or bad_stride:
            raise ValueError(f"chunk_length must be >= 1 (or None) and chunk_stride >= 1 "
                             f"with a chunk_length; got {chunk_length}, {chunk_stride}")
        self.normalize, self.chunk_length = bool(normalize), chunk_length
        self.chunk_stride = chunk_stride if chunk_stride is not None else chunk_length

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False,
                    normalize: bool = False, chunk_length: int | None = None,
                    chunk_stride: int | None = None) -> EncodecCodec:
        from audio_core.models.build import build_slot

        ctx = audio_context(cfg)
        return cls(build_slot(cfg, registry, "encoder", **ctx),
                   build_slot(cfg, registry, "decoder", **ctx),
                   build_slot(cfg, registry, "quantizer", **ctx),
                   sample_rate=cfg.data.sample_rate, channels=cfg.data.channels,
                   normalize=normalize, chunk_length=chunk_length, chunk_stride=chunk_stride)

    def n_quantizers_for_bandwidth(self, kbps: float) -> int:
        """EnCodec's codebook count for ``kbps``: ``max(1, floor(kbps * 1000 / (bits *
        ceil(sample_rate / hop))))``, at most every codebook."""
        per_q = math.log2(self.quantizer.codebook_size) * math.ceil(self.sample_rate
                                                                    / self.hop_length)
        return min(self.quantizer.num_codebooks, max(1, math.floor(kbps * 1000 / per_q)))

    # -- one chunk ----------------------------------------------------------------------
    def _encode_chunk(self, chunk: Tensor, n: int | None) -> tuple[Tensor, Tensor | None]:
        scale = chunk_scale(chunk) if self.normalize else None
        x = chunk / scale if scale is not None else chunk
        return self._codec().encode(self.encode_latent(x), n_quantizers=n), scale

    def _decode_chunk(self, codes: Tensor, scale: Tensor | None) -> Tensor:
        audio = self.decoder(self._codec().decode(codes))
        return audio * scale.view(-1, 1, 1) if scale is not None else audio

    # -- EnCodec's encode / decode ------------------------------------------------------
    def _offsets(self, length: int) -> tuple[list[int], int, int]:
        size = self.chunk_length or length
        return list(range(0, length, self.chunk_stride or length)), size, \
            self.chunk_stride or length

    @torch.no_grad()
    def encode_frames(self, waveform: Tensor, n_quantizers: int | None = None
                      ) -> tuple[Tensor, Tensor | None]:
        """Waveform ``(batch, channels, time)`` -> codes ``(chunks, batch, n, frames)`` (the
        last chunk zero-padded to the first one's frames) and scales ``(chunks, batch)``
        (``None`` without ``normalize``)."""
        offsets, size, _ = self._offsets(waveform.shape[-1])
        coded = [self._encode_chunk(waveform[..., o: o + size], n_quantizers) for o in offsets]
        frames = coded[0][0].shape[-1]
        codes = torch.stack([torch.nn.functional.pad(c, (0, frames - c.shape[-1]))
                             for c, _ in coded])
        scales = torch.stack([s.view(-1) for _, s in coded]) if self.normalize else None
        return codes, scales

    @torch.no_grad()
    def decode_frames(self, codes: Tensor, scales: Tensor | None = None,
                      length: int | None = None) -> Tensor:
        """Codes ``(chunks, batch, n, frames)`` (+ scales ``(chunks, batch)``) -> waveform
        ``(batch, channels, length)``; ``length`` (the encoded input's) also drops the
        padding of the last chunk's codes."""
        chunks = []
        stride = self.chunk_stride or codes.shape[-1] * self.hop_length
        for i, frame_codes in enumerate(codes):
            if i == len(codes) - 1 and length is not None:
                frame_codes = frame_codes[..., : math.ceil((length - i * stride)
                                                            / self.hop_length)]
            chunks.append(self._decode_chunk(frame_codes, None if scales is None else scales[i]))
        audio = chunks[0] if len(chunks) == 1 else overlap_add(chunks, stride)
        return audio if length is None else audio[..., :length]

    # -- contracts ----------------------------------------------------------------------
    @torch.no_grad()
    def encode_codes(self, waveform: Tensor, n_quantizers: int | None = None) -> Tensor:
        return self._encode_chunk(waveform, n_quantizers)[0]

    def encode_stream(self, chunks: Iterable[Tensor], n_quantizers: int | None = None
                      ) -> Iterator[Tensor]:
        """As :meth:`AudioAutoencoder.encode_stream`; a ``StreamingError`` (raised here, not
        at the first chunk) when the networks do not stream or with ``normalize``."""
        encoder, _ = streaming_parts(self)
        encoder.stream_state()  # the encoder's own reason first (EnCodec 48 kHz)
        if self.normalize:
            raise StreamingError(f"{type(self).__name__} does not stream: normalize = true "
                                 f"divides the input by the RMS of the whole signal; code "
                                 f"the whole signal (encode_codes) instead")
        return super().encode_stream(chunks, n_quantizers)

    @torch.no_grad()
    def reconstruct(self, waveform: Tensor) -> Tensor:
        if not self.has_codes:
            return super().reconstruct(waveform)
        return self.decode_frames(*self.encode_frames(waveform), length=waveform.shape[-1])

    def forward(self, waveform: Tensor) -> AutoencoderOutput:
        """The training forward; with ``normalize`` on the scaled input, rescaled after."""
        if not self.normalize:
            return super().forward(waveform)
        scale = chunk_scale(waveform)
        out = super().forward(waveform / scale)
        out.reconstruction = out.reconstruction * scale
        return out
