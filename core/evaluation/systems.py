"""The systems an evaluation compares: a model (whole, or a codec at one bitrate) and Opus.

A :class:`System` turns audio ``(channels, time)`` at the model's rate into a
:class:`Coded` result: the reconstruction, and for codecs the codes and the real bitrate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class Coded:
    """One system's output for one file: ``audio`` ``(channels, time)``; ``codes``
    ``(codebooks, frames)`` int64 for codecs; ``kbps``: the real bitrate (bits written /
    seconds) where known."""

    audio: Tensor
    codes: Tensor | None = None
    kbps: float | None = None


@dataclass
class System:
    """A named way to code audio: ``run(audio (channels, time)) -> Coded``; ``kbps`` is
    the nominal bitrate (None: continuous latents); ``codebook_size`` for usage stats."""

    name: str
    kind: str
    run: Callable[[Tensor], Coded] = field(repr=False)
    kbps: float | None = None
    codebook_size: int | None = None


def model_systems(model: nn.Module, bandwidths: list[float] | None, *,
                  chunk_seconds: float = 10.0) -> list[System]:
    """The model as one system per bitrate in ``bandwidths`` (a scalable discrete codec;
    empty/None: all its codebooks), or once through ``reconstruct`` (any reconstructor)."""
    from audio_core.contracts.models import Reconstructor, capabilities, is_codec
    from audio_core.inference.codec import (
        CodecError,
        codec_info,
        decode_audio,
        encode_audio,
        select_quantizers,
    )
    from audio_core.inference.reconstruct import NotAReconstructor, reconstruct

    if is_codec(model):
        info = codec_info(model)
        counts = [select_quantizers(info, bandwidth=b) for b in bandwidths] if bandwidths \
            else [info.num_codebooks]

        def codec_run(n: int) -> Callable[[Tensor], Coded]:
            def run(audio: Tensor) -> Coded:
                codes = encode_audio(model, audio, n_quantizers=n, chunk_seconds=chunk_seconds,
                                     show_progress=False)
                out = decode_audio(model, codes, audio.shape[-1], chunk_seconds=chunk_seconds,
                                   show_progress=False)
                seconds = audio.shape[-1] / info.sample_rate
                return Coded(out, codes, codes.numel() * info.codebook_bits / seconds / 1000)
            return run

        return [System(f"model@{info.kbps(n):g}kbps", "model", codec_run(n), info.kbps(n),
                       2 ** info.codebook_bits) for n in sorted(set(counts))]
    if bandwidths:
        raise CodecError(f"--bandwidth needs a discrete codec; this model "
                         f"({type(model).__name__}, contracts: "
                         f"{', '.join(capabilities(model)) or 'none'}) has none")
    if not isinstance(model, Reconstructor):
        raise NotAReconstructor(f"this model ({type(model).__name__}; contracts: "
                                f"{', '.join(capabilities(model)) or 'none'}) has neither a "
                                f"codec nor a reconstruct path to evaluate")
    return [System("model", "model",
                   lambda audio: Coded(reconstruct(model, audio, chunk_seconds=chunk_seconds,
                                                   show_progress=False)))]


def opus_systems(kbps_list: list[float], sample_rate: int) -> list[System]:
    """Opus at each bitrate (kbps, clipped up to Opus's 6 kbps minimum)."""
    from audio_core.evaluation.opus import MIN_KBPS, opus_roundtrip

    systems = []
    for kbps in sorted({max(MIN_KBPS, float(k)) for k in kbps_list}):
        def run(audio: Tensor, kbps: float = kbps) -> Coded:
            decoded, real = opus_roundtrip(audio, sample_rate, kbps)
            return Coded(decoded, None, real)
        systems.append(System(f"opus@{kbps:g}kbps", "opus", run, kbps))
    return systems


def codebook_usage(codes: list[Tensor], codebook_size: int) -> dict[str, float]:
    """Usage over all files: the mean fraction of each codebook's entries used at least
    once, and the mean perplexity ``2 ** entropy`` of each codebook's code histogram (a
    rough entropy-coded bits per code is ``log2`` of it)."""
    if not codes:
        return {}
    rows = torch.cat([c.reshape(c.shape[0], -1) for c in codes], dim=1)
    used, perplexity = [], []
    for row in rows:
        counts = torch.bincount(row.clamp(0, codebook_size - 1), minlength=codebook_size)
        p = counts.double() / counts.sum()
        entropy = float(-(p[p > 0] * p[p > 0].log2()).sum())
        used.append(float((counts > 0).double().mean()))
        perplexity.append(2 ** entropy)
    return {"codebook_used": sum(used) / len(used),
            "codebook_perplexity": sum(perplexity) / len(perplexity),
            "entropy_bits_per_code": math.log2(sum(perplexity) / len(perplexity))}
