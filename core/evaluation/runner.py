"""Score systems on files: per-file metrics, per-system means, codebook usage, FAD."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from audio_core.evaluation.systems import Coded, System, codebook_usage
from audio_core.metrics.spectral import (
    multi_resolution_mel_distance,
    multi_resolution_stft_distance,
)
from audio_core.metrics.waveform import si_sdr

log = logging.getLogger("audio_core")

#: Metrics where lower is better (everything else: higher is better).
LOWER_IS_BETTER = {"mel_distance", "stft_distance", "rtf", "fad", "fad_inf"}
SPEECH_METRICS = ("pesq", "stoi", "dnsmos")
#: Below this many files (clips) a Fréchet distance is dominated by its small-sample bias.
FAD_MIN_FILES = 50


def fad_sample_note(count: int, what: str = "files") -> str | None:
    """A warning when FAD is computed over fewer than :data:`FAD_MIN_FILES` clips."""
    if count >= FAD_MIN_FILES:
        return None
    return (f"FAD over only {count} {what} (fewer than {FAD_MIN_FILES}): its small-sample "
            f"bias dominates; compare it only between systems scored on the same files")


@dataclass
class EvalResult:
    """Rows per (file, system), means per system, and notes (skipped metrics...)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    systems: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fad: dict[str, Any] = field(default_factory=dict)


def waveform_metrics(estimate: Tensor, reference: Tensor, sample_rate: int) -> dict[str, float]:
    """Multi-scale mel distance, multi-resolution STFT distance and SI-SDR of one pair
    ``(channels, time)``."""
    est, ref = estimate[None].float(), reference[None].float()
    return {"mel_distance": float(multi_resolution_mel_distance(est, ref, sample_rate)[0]),
            "stft_distance": float(multi_resolution_stft_distance(est, ref)[0]),
            "si_sdr": float(si_sdr(est, ref)[0])}


class SpeechScorer:
    """PESQ-wb, STOI and DNSMOS of one mono pair, each skipped (with one note) when its
    package is missing."""

    def __init__(self, notes: list[str], dnsmos: bool = True) -> None:
        self.notes, self.enabled = notes, {"pesq": True, "stoi": True, "dnsmos": dnsmos}

    def _try(self, name: str, fn: Callable[[], Any]) -> Any:
        from audio_core.errors import MissingPackageError

        if not self.enabled[name]:
            return None
        try:
            return fn()
        except MissingPackageError as err:
            self.enabled[name] = False
            self.notes.append(f"{name} skipped: {err}")
            log.warning("%s skipped: %s", name, err)
            return None

    def __call__(self, estimate: Tensor, reference: Tensor, sample_rate: int
                 ) -> dict[str, float]:
        from audio_core.metrics import speech

        est, ref = estimate[0].double(), reference[0].double()
        out: dict[str, float] = {}
        value = self._try("pesq", lambda: speech.pesq_wb(est, ref, sample_rate))
        if value is not None:
            out["pesq"] = value
        value = self._try("stoi", lambda: speech.stoi(est, ref, sample_rate))
        if value is not None:
            out["stoi"] = value
        scores = self._try("dnsmos", lambda: speech.dnsmos(est, sample_rate))
        if scores is not None:
            out.update(scores)
        return out


def mean(values: Sequence[float]) -> float:
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def evaluate_files(files: Sequence[Path], systems: Sequence[System], *, sample_rate: int,
                   channels: int, is_speech: Callable[[Path], bool],
                   embedding=None, dnsmos: bool = True,
                   on_result: Callable[[str], None] | None = None,
                   keep: Callable[[Path, str, Tensor, Tensor], None] | None = None
                   ) -> EvalResult:
    """Run every system on every file (loaded at ``sample_rate``/``channels``) and score it.

    ``keep(file, system, original, coded)`` sees every output (for plots and audio files).
    With an ``embedding``, the FAD of each system's outputs against the originals is added
    (:mod:`audio_core.metrics.frechet`), with the embedding's name and layer.
    """
    from audio_core.audio.io import load_audio

    result = EvalResult()
    speech = SpeechScorer(result.notes, dnsmos=dnsmos)
    codes: dict[str, list[Tensor]] = {s.name: [] for s in systems}
    embeddings: dict[str, list[Tensor]] = {"original": [], **{s.name: [] for s in systems}}
    for path in files:
        audio, _ = load_audio(path, sample_rate=sample_rate, channels=channels)
        seconds = audio.shape[-1] / sample_rate
        if embedding is not None:
            embeddings["original"].append(embedding.embed(audio, sample_rate))
        for system in systems:
            start = time.perf_counter()
            coded: Coded = system.run(audio)
            elapsed = time.perf_counter() - start
            out = coded.audio.float().cpu()
            row: dict[str, Any] = {"file": str(path), "system": system.name,
                                   "kind": system.kind, "seconds": seconds,
                                   "kbps": system.kbps, "real_kbps": coded.kbps,
                                   "rtf": elapsed / seconds}
            row.update(waveform_metrics(out, audio, sample_rate))
            if is_speech(path):
                row.update(speech(out, audio, sample_rate))
            result.rows.append(row)
            if coded.codes is not None:
                codes[system.name].append(coded.codes)
            if embedding is not None:
                embeddings[system.name].append(embedding.embed(out, sample_rate))
            if keep is not None:
                keep(path, system.name, audio, out)
            if on_result is not None:
                on_result(f"{path.name} {system.name}: mel {row['mel_distance']:.3f}")
    for system in systems:
        rows = [r for r in result.rows if r["system"] == system.name]
        names: list[str] = []
        for row in rows:
            names += [k for k in row if k not in ("file", "system", "kind", *names)]
        summary: dict[str, Any] = {"kind": system.kind, "kbps": system.kbps,
                                   "files": len(rows)}
        summary.update({k: mean([r.get(k) for r in rows]) for k in names})
        if system.codebook_size and codes[system.name]:
            summary.update(codebook_usage(codes[system.name], system.codebook_size))
        result.systems[system.name] = summary
    if embedding is not None and len(files) > 0:
        result.fad = fad_scores(embeddings, embedding)
        note = fad_sample_note(len(files))
        if note is not None:
            result.notes.append(note)
        for name, score in result.fad.get("scores", {}).items():
            result.systems[name]["fad"] = score
    return result


def fad_scores(embeddings: dict[str, list[Tensor]], embedding) -> dict[str, Any]:
    """FAD of each system's frame embeddings against the originals'."""
    from audio_core.metrics.frechet import fad

    reference = torch.cat(embeddings["original"]).numpy()
    scores = {}
    for name, items in embeddings.items():
        if name == "original" or not items:
            continue
        frames = torch.cat(items).numpy()
        scores[name] = fad(reference, frames) if min(len(frames), len(reference)) >= 2 \
            else float("nan")
    return {"embedding": embedding.describe(), "reference_frames": len(reference),
            "scores": scores}
