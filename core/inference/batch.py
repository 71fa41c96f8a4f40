"""Batch inference over a list of audio files of different lengths.

Files are read at the model's rate and channel count, sorted by length and grouped
``batch_size`` at a time; each group is zero-padded at the end to its longest member (and
to whole hops), run through the model in one call, and every result is trimmed back to its
own file: ``ceil(length / hop_length)`` code or latent frames, ``length`` samples of audio.
Results come back in the order of ``paths``.

A causal model (soundstream's SEANet) gives exactly the one-by-one results: padding only
follows the signal. A model that looks ahead sees the zeros in its last frames (its
receptive field) where one-by-one encoding sees its own edge padding, so those frames can
differ; use ``batch_size=1`` where that matters.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from audio_core.audio.io import load_audio
from audio_core.errors import AudioCoreError
from audio_core.inference.reconstruct import model_rate


def _batches(model: Any, paths: Sequence[str | os.PathLike], batch_size: int,
             run: Callable[[Tensor], Tensor], frames: Callable[[int], int]) -> list[Tensor]:
    """``run`` on padded groups of ``paths``; each result trimmed to ``frames(length)``."""
    if batch_size < 1:
        raise AudioCoreError(f"batch_size must be >= 1, got {batch_size}")
    sample_rate, channels = model_rate(model)
    audio = [load_audio(p, sample_rate=sample_rate, channels=channels)[0] for p in paths]
    order = sorted(range(len(audio)), key=lambda i: audio[i].shape[-1])
    from audio_core.contracts.models import Autoencoder

    hop = int(model.hop_length) if isinstance(model, Autoencoder) else 1
    results: list[Tensor | None] = [None] * len(audio)
    for start in range(0, len(order), batch_size):
        group = order[start:start + batch_size]
        longest = max(audio[i].shape[-1] for i in group)
        padded = math.ceil(longest / hop) * hop
        batch = torch.stack([F.pad(audio[i], (0, padded - audio[i].shape[-1])) for i in group])
        with torch.no_grad():
            out = run(model._place(batch))
        for row, i in enumerate(group):
            results[i] = out[row, ..., :frames(audio[i].shape[-1])].cpu()
    return results  # type: ignore[return-value]


def encode_files(model: Any, paths: Sequence[str | os.PathLike], *,
                 n_quantizers: int | None = None, batch_size: int = 8) -> list[Tensor]:
    """Per file: codes ``(n, ceil(length / hop_length))`` (int64) of a codec, else the
    latent ``(latent_dim, frames)`` of ``model.encode``, in the order of ``paths``."""
    from audio_core.contracts.models import Autoencoder, is_codec

    if is_codec(model):
        def run(x: Tensor) -> Tensor:
            return model.encode_codes(x, n_quantizers=n_quantizers)
    elif isinstance(model, Autoencoder):
        if n_quantizers is not None:
            raise AudioCoreError(f"{type(model).__name__} has no discrete codes: "
                                 f"n_quantizers does not apply")

        def run(x: Tensor) -> Tensor:
            return model.encode(x).float()
    else:
        raise AudioCoreError(f"{type(model).__name__} is not an autoencoder: nothing to encode")
    return _batches(model, paths, batch_size, run, lambda n: math.ceil(n / model.hop_length))


def reconstruct_files(model: Any, paths: Sequence[str | os.PathLike], *,
                      batch_size: int = 8) -> list[Tensor]:
    """Per file: the reconstruction ``(channels, length)`` (fp32), in the order of ``paths``."""
    from audio_core.inference.reconstruct import reconstruct_waveform

    return _batches(model, paths, batch_size, lambda x: reconstruct_waveform(model, x),
                    lambda n: n)
