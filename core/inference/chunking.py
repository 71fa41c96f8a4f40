"""Process long signals in overlapping chunks, crossfaded back together."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from audio_core.errors import AudioCoreError


class ChunkingError(AudioCoreError, ValueError):
    """A chunk or context length is not a usable number of seconds."""


def check_seconds(value: float, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float if it is finite and > 0 (>= 0 with ``allow_zero``), else
    :class:`ChunkingError` naming ``name`` (e.g. ``--chunk-seconds``)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise ChunkingError(f"{name} must be a number of seconds, got {value!r}") from exc
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ChunkingError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return seconds


def check_chunking(chunk_seconds: float, context_seconds: float | None = None, *,
                   overlap: bool = False) -> None:
    """The one check of chunk settings every inference command and function applies:
    ``chunk_seconds`` finite and > 0, ``context_seconds`` (when given) finite and >= 0;
    with ``overlap`` (chunks that overlap by ``context_seconds``), chunks must be longer."""
    chunk = check_seconds(chunk_seconds, "chunk_seconds (--chunk-seconds)")
    if context_seconds is not None:
        context = check_seconds(context_seconds, "context_seconds (--context-seconds)",
                                allow_zero=True)
        if overlap and chunk <= context:
            raise ChunkingError(f"chunk_seconds (--chunk-seconds) must be longer than the "
                                f"{context:g} s the chunks overlap by, got {chunk_seconds!r}")


def chunk_starts(length: int, chunk: int, overlap: int) -> list[int]:
    """Start samples of chunks of ``chunk`` samples overlapping by ``overlap``."""
    if chunk <= overlap:
        raise ValueError(f"chunk ({chunk}) must be longer than its overlap ({overlap})")
    if length <= chunk:
        return [0]
    hop = chunk - overlap
    starts = list(range(0, length - chunk, hop))
    return [*starts, length - chunk] if starts[-1] != length - chunk else starts


def process_in_chunks(audio: Tensor, fn: Callable[[Tensor], Tensor], chunk: int, overlap: int,
                      progress: Callable[[Iterable[int]], Iterable[int]] = iter) -> Tensor:
    """Apply ``fn`` to ``audio`` ``(channels, time)`` chunk by chunk.

    ``fn`` maps ``(1, channels, n)`` to ``(1, channels, n)``. Overlapping parts are blended
    with a linear crossfade, so the output has the input's length and no seams.
    """
    length = audio.shape[-1]
    if length <= chunk:
        return fn(audio[None])[0]
    out = torch.zeros_like(audio)
    weight = torch.zeros(length, dtype=audio.dtype, device=audio.device)
    ramp = torch.linspace(0.0, 1.0, overlap + 2, dtype=audio.dtype, device=audio.device)[1:-1]
    window = torch.ones(chunk, dtype=audio.dtype, device=audio.device)
    if overlap:
        window[:overlap], window[-overlap:] = ramp, ramp.flip(0)
    for start in progress(chunk_starts(length, chunk, overlap)):
        piece = fn(audio[None, :, start:start + chunk])[0]
        out[:, start:start + chunk] += piece * window
        weight[start:start + chunk] += window
    return out / weight.clamp_min(1e-8)
