"""``reconstruct_file``: a model's reconstruction of an audio file, with a report.

A model qualifies when it has a ``reconstruct(waveform)`` method mapping ``(batch, channels,
time)`` to a reconstruction of the same shape (the
:class:`~audio_core.contracts.models.Reconstructor` contract: every autoencoder and codec),
and ``sample_rate``/``channels`` attributes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from tqdm import tqdm

from audio_core.audio.io import load_audio, save_audio
from audio_core.errors import AudioCoreError
from audio_core.inference.chunking import check_chunking, process_in_chunks
from audio_core.inference.paths import check_outputs, report_paths


class NotAReconstructor(AudioCoreError, TypeError):
    """The model has no waveform-to-waveform path (e.g. a generator)."""


def reconstruct_waveform(model: Any, waveform: torch.Tensor) -> torch.Tensor:
    """``model``'s reconstruction of ``waveform`` ``(batch, channels, time)``, same shape,
    fp32 on the CPU (the input is moved to the model's device)."""
    method: Any = getattr(model, "reconstruct", None)  # a capability: wrappers have it too
    if method is None or not callable(method):
        from audio_core.contracts.models import capabilities

        caps = ", ".join(capabilities(model)) or "none"
        raise NotAReconstructor(f"this model ({type(model).__name__}; contracts: {caps}) "
                                f"cannot reconstruct audio: it has no reconstruct(waveform)")
    from audio_core.contracts.models import AudioModel

    if isinstance(model, AudioModel):  # on the model's device (--device)
        waveform = model._place(waveform)
    return cast(torch.Tensor, method(waveform)).float().cpu()


def model_rate(model: Any) -> tuple[int, int]:
    """Sample rate and channel count of the audio a model handles."""
    return int(model.sample_rate), int(model.channels)


@torch.no_grad()
def reconstruct(model: Any, audio: torch.Tensor, *, chunk_seconds: float = 10.0,
                overlap_seconds: float = 0.1, show_progress: bool = True) -> torch.Tensor:
    """Reconstruction of ``audio`` ``(channels, time)`` at the model's rate, same shape."""
    check_chunking(chunk_seconds, overlap_seconds, overlap=True)
    sample_rate, _ = model_rate(model)
    chunk = max(1, int(chunk_seconds * sample_rate))
    overlap = min(int(overlap_seconds * sample_rate), chunk - 1)
    n_chunks = 1 if audio.shape[-1] <= chunk else -(-audio.shape[-1] // (chunk - overlap))

    def progress(starts):
        return tqdm(starts, desc="reconstruct", unit="chunk",
                    disable=not show_progress or n_chunks < 4)

    return process_in_chunks(audio.float(), lambda piece: reconstruct_waveform(model, piece),
                             chunk, overlap, progress)


def reconstruct_file(model: Any, source: str | os.PathLike, target: str | os.PathLike, *,
                     report: bool = True, chunk_seconds: float = 10.0,
                     baseline: nn.Module | None = None) -> dict[str, Any]:
    """Write ``model``'s reconstruction of ``source`` to ``target`` (wav/flac/...).

    With ``report``, also writes ``target`` with its extension replaced by ``.json``
    (SI-SDR, mel distance, L1 against the input at the model rate) and ``.png`` (input and
    reconstruction spectrograms): ``out.wav`` -> ``out.json``, ``out.png``. None of these
    may be the input file (:func:`~audio_core.inference.paths.check_outputs`).
    ``baseline`` (e.g. the untrained model) is scored on the same input, under
    ``"baseline"`` in the metrics. Returns the metrics.
    """
    from audio_core.metrics import reconstruction_metrics

    target = Path(target)
    check_outputs(report_paths(target, report), {"IN": source})
    check_chunking(chunk_seconds)
    sample_rate, channels = model_rate(model)
    audio, _ = load_audio(source, sample_rate=sample_rate, channels=channels)
    recon = reconstruct(model, audio, chunk_seconds=chunk_seconds)
    save_audio(target, recon.clamp(-1, 1), sample_rate)
    metrics = {"source": str(source), "sample_rate": sample_rate,
               "seconds": audio.shape[-1] / sample_rate,
               **reconstruction_metrics(recon[None], audio[None], sample_rate)}
    if baseline is not None:
        reference = reconstruct(baseline, audio, chunk_seconds=chunk_seconds)
        metrics["baseline"] = reconstruction_metrics(reference[None], audio[None], sample_rate)
    if report:
        from audio_core.inference.plots import save_spectrogram_comparison

        target.with_suffix(".json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        save_spectrogram_comparison(audio, recon, sample_rate, target.with_suffix(".png"))
    return metrics
