"""The evaluation a command runs: a reconstructing model (or codec at several bitrates)
against a folder of audio, or a generator against a reference folder (FAD)."""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audio_core.errors import AudioCoreError
from audio_core.evaluation.runner import EvalResult, evaluate_files, fad_sample_note

log = logging.getLogger("audio_core")


class EvalError(AudioCoreError, ValueError):
    """Bad evaluation input: no audio files, an unusable bitrate, an output clash."""


def audio_files(data: str | Path, limit: int | None = None) -> list[Path]:
    """``data`` itself (one file) or the audio files under it, sorted (first ``limit``)."""
    from audio_core.data.index import AUDIO_EXTENSIONS, walk_audio_files

    path = Path(data)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise EvalError(f"DATA '{path}' does not exist; give an audio file or a folder")
    files, _ = walk_audio_files(path, AUDIO_EXTENSIONS)
    files = sorted(files)
    if not files:
        raise EvalError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under '{path}'")
    return files[:limit] if limit else files


#: What ``eval`` writes into its output folder.
OUTPUT_FILES = ("results.json", "files.csv", "metrics_vs_bitrate.png", "worst_files.png")


def _earlier_eval(path: Path) -> bool:
    """True when ``path`` is in a folder an earlier ``eval`` wrote (its results.json)."""
    try:
        results = json.loads((path.parent / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(results, dict) and "model" in results and (
        "systems" in results or "generated" in results)


def claim_eval_folder(out: str | Path, inputs: dict[str, str], *,
                      overwrite: bool = False) -> None:
    """Check ``eval``'s output folder before any work (:func:`claim_outputs`): its files may
    replace an earlier evaluation's, never a user's files or anything inside an export."""
    from audio_core.inference.paths import OutputPathError, claim_outputs

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"--out '{out}' is a file; give a folder")
    claim_outputs({f"--out's {name}": out / name for name in OUTPUT_FILES}, inputs,
                  overwrite=overwrite, owned=_earlier_eval)


def speech_rule(data: str | Path, mode: str):
    """``mode`` ``yes``/``no``/``auto`` -> ``is_speech(file)``; auto: a folder named
    ``speech`` in the file's path (or DATA's)."""
    if mode == "yes":
        return lambda path: True
    if mode == "no":
        return lambda path: False
    return lambda path: "speech" in {p.lower() for p in Path(path).resolve().parts[:-1]}


class WorstFiles:
    """Keeps the ``count`` worst outputs (highest mel distance) of one system."""

    def __init__(self, system: str | None, sample_rate: int, count: int = 3) -> None:
        self.system, self.sample_rate, self.count = system, sample_rate, count
        self.heap: list[tuple[float, int, tuple]] = []

    def __call__(self, path: Path, system: str, original, coded) -> None:
        if system != self.system:
            return
        from audio_core.evaluation.runner import waveform_metrics

        distance = waveform_metrics(coded, original, self.sample_rate)["mel_distance"]
        item = (distance, len(self.heap), (str(path), system, distance, original, coded))
        if len(self.heap) < self.count:
            heapq.heappush(self.heap, item)
        else:
            heapq.heappushpop(self.heap, item)

    def items(self) -> list[tuple]:
        return [entry for _, _, entry in sorted(self.heap, reverse=True)]


def evaluate_reconstruction(model: Any, data: str | Path, out: Path, *,
                            bandwidths: Sequence[float] | None = None,
                            baseline: str | None = None, speech: str = "auto",
                            embedding=None, dnsmos: bool = True, limit: int | None = None,
                            chunk_seconds: float = 10.0, progress=None,
                            model_name: str = "model") -> tuple[EvalResult, dict[str, Any]]:
    """Score ``model`` (and Opus at the same bitrates with ``baseline="opus"``) on the files
    of ``data``; writes ``out/results.json``, ``out/files.csv``, ``out/metrics_vs_bitrate.png``
    and ``out/worst_files.png``. Returns the result and the paths written."""
    from audio_core.evaluation import report
    from audio_core.evaluation.systems import model_systems, opus_systems

    files = audio_files(data, limit)
    sample_rate, channels = int(model.sample_rate), int(model.channels)
    systems = model_systems(model, list(bandwidths or []), chunk_seconds=chunk_seconds)
    notes = []
    if baseline == "auto":
        from audio_core.evaluation.opus import opus_available

        baseline = "opus" if opus_available() else None
        if baseline is None:
            notes.append("no Opus baseline: opusenc/opusdec not installed (apt-get install "
                         "opus-tools)")
    if baseline == "opus":
        from audio_core.evaluation.opus import require_opus

        require_opus()
        kbps = [s.kbps for s in systems if s.kbps] or [6.0]
        systems += opus_systems(kbps, sample_rate)
    elif baseline is not None:
        raise EvalError(f"unknown baseline {baseline!r}; available: 'opus'")
    worst = WorstFiles(systems[-1 if baseline is None else
                               len([s for s in systems if s.kind == "model"]) - 1].name,
                       sample_rate)
    result = evaluate_files(files, systems, sample_rate=sample_rate, channels=channels,
                            is_speech=speech_rule(data, speech), embedding=embedding,
                            dnsmos=dnsmos, on_result=progress, keep=worst)
    result.notes[:0] = notes
    out.mkdir(parents=True, exist_ok=True)
    info = {"model": model_name, "data": str(data), "sample_rate": sample_rate,
            "channels": channels, "baseline": baseline}
    written = {"json": report.write_json(result, out / "results.json", info),
               "csv": report.write_csv(result, out / "files.csv"),
               "bitrate_plot": report.plot_vs_bitrate(result, out / "metrics_vs_bitrate.png"),
               "worst_plot": report.plot_worst(worst.items(), sample_rate,
                                               out / "worst_files.png")}
    return result, {k: str(v) for k, v in written.items() if v is not None}


def evaluate_generator(model: Any, reference: str | Path, out: Path, *, embedding,
                       num_samples: int = 16, seconds: float | None = None,
                       steps: int | None = None, guidance: float | None = None,
                       seed: int = 0, conditioning: Any = None, limit: int | None = None,
                       model_name: str = "model") -> dict[str, Any]:
    """Generate ``num_samples`` clips into ``out/generated/`` and score them against the
    reference folder: FAD and FAD-inf with the embedding's name and layer, in
    ``out/results.json``."""
    import torch

    from audio_core.audio.io import load_audio, save_audio
    from audio_core.files import write_text
    from audio_core.metrics.frechet import fad, fad_inf

    if num_samples < 2:
        raise EvalError(f"FAD needs at least 2 generated samples, got --num-samples "
                        f"{num_samples}")
    from audio_core.inference.limits import check_generation

    check_generation(num_samples=num_samples, steps=steps, guidance=guidance,
                     seconds=seconds if seconds is not None else model.seconds,
                     sample_rate=model.sample_rate, channels=model.channels)
    files = audio_files(reference, limit)
    audio = model.generate(conditioning, num_samples=num_samples, steps=steps,
                           guidance=guidance, seed=seed, seconds=seconds)
    folder = out / "generated"
    folder.mkdir(parents=True, exist_ok=True)
    generated = []
    for i, clip in enumerate(audio):
        save_audio(folder / f"sample_{i:03d}.wav", clip.clamp(-1, 1).cpu(), model.sample_rate)
        generated.append(embedding.embed(clip.float().cpu(), model.sample_rate))
    references = [embedding.embed(load_audio(f)[0], load_audio(f)[1]) for f in files]
    ref, gen = torch.cat(references).numpy(), torch.cat(generated).numpy()
    extrapolated = fad_inf(ref, gen) if len(gen) >= 8 else None
    notes = [n for n in (fad_sample_note(num_samples, "generated clips"),
                         fad_sample_note(len(files), "reference files")) if n]
    for note in notes:
        log.warning("%s", note)
    payload = {"model": model_name, "reference": str(reference),
               "generated": str(folder), "num_samples": num_samples, "seed": seed,
               "steps": steps, "guidance": guidance, "embedding": embedding.describe(),
               "reference_frames": len(ref), "generated_frames": len(gen),
               "fad": fad(ref, gen),
               "fad_inf": None if extrapolated is None else extrapolated.value,
               "fad_inf_fit": None if extrapolated is None else {
                   "sizes": extrapolated.sizes, "scores": extrapolated.scores,
                   "slope": extrapolated.slope},
               "notes": notes}
    write_text(out / "results.json", json.dumps(payload, indent=2) + "\n")
    return payload
