"""Score systems on files: per-file metrics, per-system means, codebook usage, FAD."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
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


def mean(values: Sequence[float | None]) -> float:
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


#: Files longer than this are read, run and scored in blocks of this length (seconds), so
#: memory stays bounded whatever a file's length; a file's scores are the duration-weighted
#: means over its blocks, and ``keep`` sees its first block only.
BLOCK_SECONDS = 120.0


def iter_blocks(path: Path, sample_rate: int, channels: int,
                block_seconds: float | None = None) -> Iterator[Tensor]:
    """``path`` at ``sample_rate``/``channels`` as ``(channels, time)`` blocks of at most
    ``block_seconds`` (default :data:`BLOCK_SECONDS`), read one at a time (a whole file
    when shorter)."""
    import soundfile as sf

    from audio_core.audio.io import AudioFileError, load_audio

    try:
        info = sf.info(str(path))
    except Exception:  # not readable as audio: load_audio raises the right message
        yield load_audio(path, sample_rate=sample_rate, channels=channels)[0]
        return
    step = max(1, int((block_seconds or BLOCK_SECONDS) * info.samplerate))
    if info.frames <= step:
        yield load_audio(path, sample_rate=sample_rate, channels=channels)[0]
        return
    for offset in range(0, info.frames, step):
        try:
            yield load_audio(path, sample_rate=sample_rate, channels=channels, offset=offset,
                             frames=step)[0]
        except AudioFileError:
            if offset == 0:
                raise
            return  # a header that promises more frames than the file holds


def _score_block(audio: Tensor, system: System, *, sample_rate: int,
                 speech: SpeechScorer | None) -> tuple[dict[str, Any], Coded, float]:
    start = time.perf_counter()
    coded: Coded = system.run(audio)
    elapsed = time.perf_counter() - start
    out = coded.audio.float().cpu()
    scores = waveform_metrics(out, audio, sample_rate)
    if speech is not None:
        scores.update(speech(out, audio, sample_rate))
    return scores, Coded(out, coded.codes, coded.kbps), elapsed


def evaluate_files(files: Sequence[Path], systems: Sequence[System], *, sample_rate: int,
                   channels: int, is_speech: Callable[[Path], bool],
                   embedding=None, dnsmos: bool = True,
                   on_result: Callable[[str], None] | None = None,
                   keep: Callable[[Path, str, Tensor, Tensor], None] | None = None
                   ) -> EvalResult:
    """Run every system on every file (loaded at ``sample_rate``/``channels``, long files in
    blocks of :data:`BLOCK_SECONDS`) and score it.

    ``keep(file, system, original, coded)`` sees every output (for plots and audio files).
    With an ``embedding``, the FAD of each system's outputs against the originals is added
    (:mod:`audio_core.metrics.frechet`), with the embedding's name and layer.
    """
    result = EvalResult()
    speech = SpeechScorer(result.notes, dnsmos=dnsmos)
    codes: dict[str, list[Tensor]] = {s.name: [] for s in systems}
    embeddings: dict[str, list[Tensor]] = {"original": [], **{s.name: [] for s in systems}}
    for path in files:
        sums: dict[str, dict[str, float]] = {s.name: {} for s in systems}
        elapsed = {s.name: 0.0 for s in systems}
        kbps: dict[str, Any] = {}
        seconds = 0.0
        for n, audio in enumerate(iter_blocks(path, sample_rate, channels)):
            block = audio.shape[-1] / sample_rate
            seconds += block
            if embedding is not None:
                embeddings["original"].append(embedding.embed(audio, sample_rate))
            for system in systems:
                scores, coded, took = _score_block(
                    audio, system, sample_rate=sample_rate,
                    speech=speech if is_speech(path) else None)
                elapsed[system.name] += took
                if coded.kbps is not None:  # duration-weighted like the scores
                    kbps[system.name] = kbps.get(system.name, 0.0) + coded.kbps * block
                for key, value in scores.items():
                    if isinstance(value, int | float):
                        sums[system.name][key] = sums[system.name].get(key, 0.0) + value * block
                if coded.codes is not None:
                    small = torch.int16 if (system.codebook_size or 0) <= 2**15 else torch.int32
                    codes[system.name].append(coded.codes.to(small))
                if embedding is not None:
                    embeddings[system.name].append(embedding.embed(coded.audio, sample_rate))
                if keep is not None and n == 0:
                    keep(path, system.name, audio, coded.audio)
        for system in systems:
            row: dict[str, Any] = {"file": str(path), "system": system.name,
                                   "kind": system.kind, "seconds": seconds,
                                   "kbps": system.kbps, "real_kbps": kbps[system.name] / seconds
                                   if system.name in kbps else None,
                                   "rtf": elapsed[system.name] / seconds}
            row.update({k: v / seconds for k, v in sums[system.name].items()})
            result.rows.append(row)
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
