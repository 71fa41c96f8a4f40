"""Encode audio to token files and decode them back, for any model with a discrete codec.

A model qualifies when it implements the codec contract of
:class:`~audio_core.models.autoencoder.AudioAutoencoder`:

- ``codec_spec() -> {"hop_length", "num_codebooks", "codebook_bits", "scalable"}``: codes
  form a grid of ``num_codebooks`` rows and one column per ``hop_length`` samples, each
  code ``codebook_bits`` bits; ``scalable`` when any leading subset of the rows decodes
  (residual codebooks: lower bitrates), else only all of them do (a fixed bitrate);
- ``encode_codes(waveform (batch, channels, time), n_quantizers=None)`` -> int64 codes
  ``(batch, n, ceil(time / hop_length))``;
- ``decode_codes(codes (batch, n, frames), length=None)`` -> ``(batch, channels, length)``.

Long signals are processed in chunks on the latent frame grid (docs/tokens.md):

- **encode**: the padded signal (a multiple of ``hop_length`` samples, ``F`` frames) is cut
  into non-overlapping chunks of ``chunk_frames`` frames. Each chunk is encoded together
  with up to ``context_frames`` frames of audio on either side, and the codes of the
  context are discarded, so the chunks' codes concatenate to exactly ``F`` frames. An
  encoder whose receptive field fits in the context gives the unchunked codes.
- **decode**: the same chunks of codes, each decoded with up to ``context_frames`` frames
  of codes on either side; neighbouring chunks are crossfaded linearly over
  ``context_frames * hop_length`` samples (at most) centred on their boundary, and the
  result is trimmed to the original length. A decoder whose receptive field fits in half
  the context gives the unchunked audio (up to float rounding).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from audio_core.audio.transforms import fit_length
from audio_core.errors import CodecError
from audio_core.inference.chunking import check_chunking
from audio_core.inference.paths import check_outputs, check_token_output
from audio_core.inference.tokens import TokenHeader, read_tokens, write_tokens
from audio_core.models.fingerprint import model_fingerprint


@dataclass(frozen=True)
class CodecInfo:
    """The facts about a codec model that token files and bitrates depend on."""

    sample_rate: int
    channels: int
    hop_length: int
    num_codebooks: int
    codebook_bits: int
    scalable: bool = True

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def kbps(self, n_quantizers: int) -> float:
        """Bitrate with the first ``n_quantizers`` codebooks, in kilobits per second."""
        return n_quantizers * self.codebook_bits * self.frame_rate / 1000


def codec_info(model: Any) -> CodecInfo:
    """:class:`CodecInfo` of ``model``; :class:`CodecError` unless it implements the codec
    contract (:class:`~audio_core.contracts.models.Codec`) with discrete codes."""
    from audio_core.contracts.models import Codec, is_codec

    if not is_codec(model):
        why = ("it has no discrete bottleneck" if isinstance(model, Codec)
               else "it does not implement audio_core.models.Codec")
        raise CodecError(f"this model ({type(model).__name__}) is not a discrete codec: {why} "
                         f"(token files, --bandwidth and --n-quantizers need codes)")
    spec = model.codec_spec()
    return CodecInfo(int(model.sample_rate), int(model.channels), int(spec.hop_length),
                     int(spec.num_codebooks), int(spec.codebook_bits), bool(spec.scalable))


def select_quantizers(info: CodecInfo, *, bandwidth: float | None = None,
                      n_quantizers: int | None = None) -> int:
    """Codebooks to use: ``n_quantizers``, or ``floor(bandwidth * 1000 / (frame_rate *
    codebook_bits))`` for ``bandwidth`` in kbps, or all; :class:`CodecError` if out of range."""
    if bandwidth is not None and n_quantizers is not None:
        raise CodecError("give a bandwidth or a number of quantizers, not both")
    everything = n_quantizers in (None, info.num_codebooks) and bandwidth is None
    if not info.scalable and not everything:
        raise CodecError(f"this model's bitrate is fixed at {info.kbps(info.num_codebooks):g} "
                         f"kbps: its {info.num_codebooks} code rows all decode together, so "
                         f"--bandwidth/--n-quantizers do not apply")
    per_codebook = info.kbps(1)
    if bandwidth is not None:
        n = math.floor(bandwidth / per_codebook + 1e-9)
        if not 1 <= n <= info.num_codebooks:
            raise CodecError(
                f"bandwidth {bandwidth:g} kbps is outside this model's range: each of its "
                f"{info.num_codebooks} codebooks adds {per_codebook:g} kbps "
                f"({info.frame_rate:g} frames/s x {info.codebook_bits} bits), so choose "
                f"{per_codebook:g} to {info.kbps(info.num_codebooks):g} kbps")
        return n
    if n_quantizers is None:
        return info.num_codebooks
    if not 1 <= n_quantizers <= info.num_codebooks:
        raise CodecError(f"n_quantizers must be in [1, {info.num_codebooks}] for this model, "
                         f"got {n_quantizers}")
    return int(n_quantizers)


def frame_spans(num_frames: int, chunk_frames: int, context_frames: int
                ) -> list[tuple[int, int, int, int]]:
    """``(start, end, lo, hi)`` per chunk: frames ``[start, end)`` are kept, ``[lo, hi)`` are
    computed (``context_frames`` either side, clipped to ``[0, num_frames)``)."""
    if chunk_frames < 1 or context_frames < 0:
        raise ValueError(f"chunk_frames must be >= 1 and context_frames >= 0, got "
                         f"{chunk_frames} and {context_frames}")
    return [(a, min(a + chunk_frames, num_frames), max(0, a - context_frames),
             min(num_frames, a + chunk_frames + context_frames))
            for a in range(0, max(num_frames, 1), chunk_frames)]


def _grid(info: CodecInfo, chunk_seconds: float, context_seconds: float) -> tuple[int, int]:
    check_chunking(chunk_seconds, context_seconds)
    chunk = max(1, int(chunk_seconds * info.sample_rate) // info.hop_length)
    return chunk, math.ceil(context_seconds * info.sample_rate / info.hop_length)


def _progress(spans: list, what: str, show: bool) -> Any:
    return tqdm(spans, desc=what, unit="chunk", disable=not show or len(spans) < 4)


def _place(model: Any, x: Tensor) -> Tensor:
    p = next(model.parameters(), None)
    return x if p is None else x.to(p.device, p.dtype if x.is_floating_point() else x.dtype)


@torch.no_grad()
def encode_audio(model: Any, audio: Tensor, *, n_quantizers: int | None = None,
                 chunk_seconds: float = 10.0, context_seconds: float = 0.5,
                 show_progress: bool = True) -> Tensor:
    """Audio ``(channels, time)`` at the model's rate -> codes int64 ``(n, ceil(time /
    hop_length))``, chunked on the frame grid (see the module docstring)."""
    info = codec_info(model)
    n = select_quantizers(info, n_quantizers=n_quantizers)
    hop = info.hop_length
    frames = -(-audio.shape[-1] // hop)
    audio = _place(model, F.pad(audio, (0, frames * hop - audio.shape[-1])))
    codes = torch.zeros(n, frames, dtype=torch.int64)
    spans = frame_spans(frames, *_grid(info, chunk_seconds, context_seconds))
    for start, end, lo, hi in _progress(spans, "encode", show_progress):
        piece = model.encode_codes(audio[None, :, lo * hop:hi * hop], n_quantizers=n)[0]
        if piece.shape != (n, hi - lo):
            raise CodecError(f"the encoder gave codes of shape {tuple(piece.shape)} for "
                             f"{(hi - lo) * hop} samples; chunked encoding needs "
                             f"({n}, samples / hop_length = {hi - lo})")
        codes[:, start:end] = piece[:, start - lo:end - lo].cpu()
    return codes


@torch.no_grad()
def decode_audio(model: Any, codes: Tensor, length: int | None = None, *,
                 chunk_seconds: float = 10.0, context_seconds: float = 0.5,
                 show_progress: bool = True) -> Tensor:
    """Codes ``(n, frames)`` -> audio ``(channels, length)`` (default ``frames *
    hop_length``), chunked and crossfaded on the frame grid (see the module docstring)."""
    info = codec_info(model)
    hop, frames = info.hop_length, codes.shape[-1]
    chunk, context = _grid(info, chunk_seconds, context_seconds)
    spans = frame_spans(frames, chunk, context)
    # crossfade half-width at the boundary before chunk i (each side keeps >= half of it)
    halves = [0] + [min(context * hop // 2, (a - lo) * hop // 2, (prev_hi - a) * hop // 2)
                    for (a, _, lo, _), (_, _, _, prev_hi) in zip(spans[1:], spans, strict=False)]
    out = torch.zeros(info.channels, frames * hop)
    weight = torch.zeros(frames * hop)
    codes = _place(model, codes.long())
    for i, (start, end, lo, hi) in enumerate(_progress(spans, "decode", show_progress)):
        piece = model.decode_codes(codes[None, :, lo:hi], (hi - lo) * hop)[0].float().cpu()
        left, right = halves[i], halves[i + 1] if i + 1 < len(spans) else 0
        a, b = start * hop - left, end * hop + right
        w = torch.ones(b - a)
        if left:
            w[:2 * left] = (torch.arange(2 * left) + 0.5) / (2 * left)
        if right:
            w[-2 * right:] = 1 - (torch.arange(2 * right) + 0.5) / (2 * right)
        out[:, a:b] += piece[:, a - lo * hop:b - lo * hop] * w
        weight[a:b] += w
    out = out / weight.clamp_min(1e-8)
    length = frames * hop if length is None else int(length)
    return fit_length(out, length)


def check_tokens(model: Any, header: TokenHeader, *, source: str | os.PathLike = "tokens",
                 fingerprint: str | None = None) -> None:
    """:class:`CodecError` naming both fingerprints unless ``header`` was written by ``model``
    (same fingerprint, sample rate, hop length and bits per code)."""
    info = codec_info(model)
    fingerprint = fingerprint or model_fingerprint(model)
    problems = []
    if header.model_fingerprint != fingerprint:
        problems.append("the model fingerprint differs")
    if int(header.sample_rate) != info.sample_rate:
        problems.append(f"sample rate {header.sample_rate} Hz in the file, {info.sample_rate} "
                        f"Hz in the model")
    if header.hop_length is not None and int(header.hop_length) != info.hop_length:
        problems.append(f"hop length {header.hop_length} vs {info.hop_length}")
    if int(header.codebook_bits) != info.codebook_bits:
        problems.append(f"{header.codebook_bits} bits per code vs {info.codebook_bits}")
    if int(header.channels) != info.channels:
        problems.append(f"{header.channels} channel(s) in the file, {info.channels} in the model")
    if header.num_codebooks > info.num_codebooks:
        problems.append(f"{header.num_codebooks} codebooks vs the model's "
                        f"{info.num_codebooks}")
    if problems:
        raise CodecError(f"{source} was encoded by a model with fingerprint "
                         f"{header.model_fingerprint}, but this model's fingerprint is "
                         f"{fingerprint}: {'; '.join(problems)}. Decode it with the model (and "
                         f"weights: --ema or not) that encoded it.")


def encode_file(model: Any, source: str | os.PathLike, target: str | os.PathLike, *,
                bandwidth: float | None = None, n_quantizers: int | None = None,
                chunk_seconds: float = 10.0, context_seconds: float = 0.5,
                show_progress: bool = True) -> TokenHeader:
    """Encode audio file ``source`` (resampled to the model's rate and channels) into token
    file ``target`` with the codebooks ``bandwidth``/``n_quantizers`` select; returns the
    header written."""
    from audio_core.audio.io import load_audio

    check_outputs({"OUT": target}, {"IN": source})
    check_token_output(target)
    check_chunking(chunk_seconds, context_seconds)
    info = codec_info(model)
    n = select_quantizers(info, bandwidth=bandwidth, n_quantizers=n_quantizers)
    audio, _ = load_audio(source, sample_rate=info.sample_rate, channels=info.channels)
    codes = encode_audio(model, audio, n_quantizers=n, chunk_seconds=chunk_seconds,
                         context_seconds=context_seconds, show_progress=show_progress)
    header = TokenHeader(model_fingerprint=model_fingerprint(model),
                         sample_rate=info.sample_rate, frame_rate=info.frame_rate,
                         codebook_bits=info.codebook_bits, channels=info.channels,
                         length=int(audio.shape[-1]), hop_length=info.hop_length)
    return write_tokens(target, codes, header)


def decode_file(model: Any, source: str | os.PathLike, target: str | os.PathLike, *,
                n_quantizers: int | None = None, chunk_seconds: float = 10.0,
                context_seconds: float = 0.5, show_progress: bool = True) -> dict[str, Any]:
    """Decode token file ``source`` with ``model`` (which must have encoded it) into audio
    file ``target``, using its first ``n_quantizers`` codebooks (default all stored)."""
    from audio_core.audio.io import save_audio

    check_outputs({"OUT": target}, {"IN": source})
    check_chunking(chunk_seconds, context_seconds)
    codes, header = read_tokens(source)
    check_tokens(model, header, source=source)
    if n_quantizers is not None:
        if not 1 <= n_quantizers <= header.num_codebooks:
            raise CodecError(f"{source} stores {header.num_codebooks} codebooks; "
                             f"--n-quantizers must be in [1, {header.num_codebooks}], got "
                             f"{n_quantizers}")
        select_quantizers(codec_info(model), n_quantizers=n_quantizers)  # fixed bitrate?
        codes = codes[:n_quantizers]
    audio = decode_audio(model, codes, header.length, chunk_seconds=chunk_seconds,
                         context_seconds=context_seconds, show_progress=show_progress)
    save_audio(target, audio.clamp(-1, 1), header.sample_rate)
    return {"tokens": str(source), "output": str(target), "sample_rate": header.sample_rate,
            "seconds": header.length / header.sample_rate, "codebooks": int(codes.shape[0]),
            "kbps": codes.shape[0] * header.codebook_bits * header.frame_rate / 1000}


class LimitedCodec(nn.Module):
    """``model`` reconstructing through its first ``n_quantizers`` codebooks:
    ``reconstruct(audio (batch, channels, time))`` = ``decode_codes(encode_codes(audio, n))``."""

    def __init__(self , model: Any, n_quantizers: int) -> None:
        super().__init__()
        self.model, self.n_quantizers = model, int(n_quantizers)
        self.config = getattr(model, "config", None)
        self.sample_rate, self.channels = model.sample_rate, model.channels

    def reconstruct(self, audio: Tensor) -> Tensor:
        codes = self.model.encode_codes(audio, n_quantizers=self.n_quantizers)
        return self.model.decode_codes(codes, audio.shape[-1])


def reconstruct_codec_file(model: Any, source: str | os.PathLike,
                           target: str | os.PathLike, *, bandwidth: float | None = None,
                           n_quantizers: int | None = None, report: bool = True,
                           chunk_seconds: float = 10.0) -> dict[str, Any]:
    """:func:`~audio_core.inference.reconstruct.reconstruct_file` through the codebooks
    ``bandwidth``/``n_quantizers`` select; the metrics gain ``codebooks`` and ``kbps``."""
    from audio_core.inference.reconstruct import reconstruct_file

    info = codec_info(model)
    n = select_quantizers(info, bandwidth=bandwidth, n_quantizers=n_quantizers)
    metrics = reconstruct_file(LimitedCodec(model, n), source, target, report=report,
                               chunk_seconds=chunk_seconds)
    metrics.update(codebooks=n, kbps=info.kbps(n))
    if report:
        Path(target).with_suffix(".json").write_text(json.dumps(metrics, indent=2),
                                                      encoding="utf-8")
    return metrics
