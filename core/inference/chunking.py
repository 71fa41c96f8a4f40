"""Process long signals in overlapping chunks, crossfaded back together."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor


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
