"""What the web page does, without the page: load models, reconstruct an upload at a
bitrate, match loudness, score it and draw spectrograms; generate audio.

Kept free of Gradio so it is tested directly; :mod:`audio_core.ui.app` only lays it out.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from audio_core.inference.limits import LIMITS, GenerationLimitError

#: Loudness both A/B players are set to (RMS, dBFS); peaks are kept below 0.99.
TARGET_DBFS = -23.0


def loudness_match(*signals: Tensor, target_dbfs: float = TARGET_DBFS) -> list[Tensor]:
    """Each signal ``(channels, time)`` scaled to the same RMS level ``target_dbfs``; then
    all by one common factor if any peak would exceed 0.99, so none clips and they stay
    matched."""
    target = 10 ** (target_dbfs / 20)
    scaled = [s * (target / s.float().square().mean().sqrt().clamp_min(1e-8)) for s in signals]
    peak = max(float(s.abs().max()) for s in scaled)
    return [s * (0.99 / peak) for s in scaled] if peak > 0.99 else scaled


def describe(model: Any) -> dict[str, Any]:
    """What the page needs about a model: contracts, rate, codebooks (scalable or not)."""
    from audio_core.contracts.models import capabilities, is_codec

    info: dict[str, Any] = {"contracts": capabilities(model),
                            "sample_rate": int(model.sample_rate),
                            "channels": int(model.channels)}
    if is_codec(model):
        from audio_core.inference.codec import codec_info

        codec = codec_info(model)
        info.update(num_codebooks=codec.num_codebooks, scalable=codec.scalable,
                    kbps_per_codebook=codec.kbps(1))
    return info


@dataclass
class Reconstruction:
    """One reconstruction for the page: loudness-matched original and reconstruction
    (``(channels, time)`` at ``sample_rate``), the raw reconstruction file for download,
    metrics and the spectrogram figure."""

    sample_rate: int
    original: Tensor
    reconstruction: Tensor
    download: Path
    spectrogram: Path
    metrics: dict[str, Any] = field(default_factory=dict)


def _whole(field: str, value: Any, low: int, high: int, like: str) -> int:
    """``value`` as an int in ``[low, high]``, else a one-line error naming ``field``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value == int(value) and low <= value <= high
    if not ok:
        raise GenerationLimitError(f"{field} must be a whole number from {low} to {high} "
                                   f"(like {like}), got {value!r}")
    return int(value)


def _real(field: str, value: Any, low: float, high: float, like: str, *,
          above_low: bool = False) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``above_low``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and (value > low if above_low else value >= low) \
        and value <= high
    if not ok:
        side = ">" if above_low else ">="
        raise GenerationLimitError(f"{field} must be a number {side} {low:g} and <= {high:g} "
                                   f"(like {like}), got {value!r}")
    return float(value)


def check_page_numbers(steps: Any = None, guidance: Any = None, seed: Any = 0,
                       seconds: Any = None) -> tuple[int | None, float | None, int,
                                                     float | None]:
    """The generate tab's numbers checked like ``audio-core generate`` checks its flags:
    ``(steps, guidance, seed, seconds)``; ``None`` (an empty field) is the model's own value
    (seed: 0). Anything else out of range (0, negative, NaN, inf, huge, fractional steps)
    is a :class:`GenerationLimitError` naming the field, before anything is allocated."""
    return (None if steps is None else _whole("steps", steps, 1, LIMITS["--steps"],
                                              "--steps"),
            None if guidance is None else _real("guidance", guidance, 0.0, 1e6,
                                                "--guidance"),
            0 if seed is None else _whole("seed", seed, 0, 2**63 - 1, "--seed"),
            None if seconds is None else _real("seconds", seconds, 0.0, LIMITS["--seconds"],
                                               "--seconds", above_low=True))


class Models:
    """Models by the name shown in the picker (their path), loaded once, on first use."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = list(paths)
        self._loaded: dict[str, nn.Module] = {}
        # reconstructions, spectrograms and Gradio's own cache of uploads and results
        # (:func:`audio_core.ui.app.build_app`); removed by :meth:`close`, at the latest
        # with this object or when the server's process exits
        self._workdir = tempfile.TemporaryDirectory(prefix="audio-core-ui-")
        self.workdir = Path(self._workdir.name)

    def close(self) -> None:
        """Remove the working folder and everything in it."""
        self._workdir.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def get(self, name: str) -> nn.Module:
        from audio_core.models.loading import load

        if not name:
            raise ValueError("choose a model first")
        if name not in self._loaded:
            self._loaded[name] = load(name)
        return self._loaded[name]

    def reconstruct(self, name: str, source: str | Path, codebooks: int | None = None
                    ) -> Reconstruction:
        """Reconstruct audio file ``source`` with model ``name`` through its first
        ``codebooks`` codebooks (scalable codecs; None: all)."""
        from audio_core.audio.io import load_audio, save_audio
        from audio_core.evaluation.runner import SpeechScorer, waveform_metrics
        from audio_core.evaluation.spectrograms import difference_panels
        from audio_core.evaluation.systems import model_systems

        model = self.get(name)
        info = describe(model)
        rate = info["sample_rate"]
        audio, _ = load_audio(source, sample_rate=rate, channels=info["channels"])
        bandwidth = None
        if codebooks and "num_codebooks" in info and info["scalable"]:
            n = min(max(int(codebooks), 1), info["num_codebooks"])
            bandwidth = [n * info["kbps_per_codebook"]]
        system = model_systems(model, bandwidth)[0]
        start = time.perf_counter()
        coded = system.run(audio)
        elapsed = time.perf_counter() - start
        out = coded.audio.float().cpu()
        metrics: dict[str, Any] = {"system": system.name, "kbps": system.kbps,
                                   "real_kbps": coded.kbps,
                                   "rtf": elapsed / (audio.shape[-1] / rate)}
        metrics.update(waveform_metrics(out, audio, rate))
        notes: list[str] = []
        metrics.update(SpeechScorer(notes, dnsmos=False)(out, audio, rate))
        if notes:
            metrics["notes"] = notes
        stamp = f"{int(time.time() * 1000)}"
        download = self.workdir / f"{Path(source).stem}_reconstruction_{stamp}.wav"
        save_audio(download, out.clamp(-1, 1), rate)
        figure = self.workdir / f"spectrograms_{stamp}.png"
        save_panels(difference_panels(audio, out, rate), figure)
        original, matched = loudness_match(audio, out)
        return Reconstruction(rate, original, matched, download, figure,
                              {k: v for k, v in metrics.items() if v is not None})

    def generate(self, name: str, text: str = "", label: str = "", steps: int | None = None,
                 guidance: float | None = None, seed: int = 0,
                 seconds: float | None = None) -> tuple[int, Tensor]:
        """One clip ``(channels, time)`` from generator ``name``; the numbers are checked
        by :func:`check_page_numbers` first."""
        from audio_core.contracts.models import Generator

        steps, guidance, seed, seconds = check_page_numbers(steps, guidance, seed, seconds)
        model = self.get(name)
        if not isinstance(model, Generator):
            raise ValueError(f"{name} is not a generative model")
        from audio_core.inference.limits import check_generation

        check_generation(steps=steps, guidance=guidance, seconds=seconds,
                         sample_rate=model.sample_rate, channels=model.channels)
        conditioning: dict[str, Any] = {}
        for cond, keys in model.conditions.items():  # text/label conditioners; others null
            if keys == ("text",):
                conditioning[cond] = text or ""
            elif keys == ("label",) and label:
                conditioning[cond] = label
        audio = model.generate(conditioning, num_samples=1, steps=steps, guidance=guidance,
                               seed=seed, seconds=seconds)
        return int(model.sample_rate), audio[0].float().clamp(-1, 1).cpu()


def save_panels(panels, path: Path) -> Path:
    """Original / reconstruction / difference spectrograms side by side in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), constrained_layout=True)
    titles = {"coded": "reconstruction"}
    for ax, (title, spec, cmap, limits) in zip(axes, panels, strict=True):
        image = ax.imshow(spec, origin="lower", aspect="auto", cmap=cmap, vmin=limits[0],
                          vmax=limits[1])
        ax.set(title=f"{titles.get(title, title)} (dB)", xlabel="frame", ylabel="mel bin")
        fig.colorbar(image, ax=ax)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
