"""What the web page does, without the page: load models, reconstruct an upload at a
bitrate, match loudness, score it and draw spectrograms; generate audio.

Kept free of Gradio so it is tested directly; :mod:`audio_core.ui.app` only lays it out.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

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


def describe(model: nn.Module) -> dict[str, Any]:
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


class Models:
    """Models by the name shown in the picker (their path), loaded once, on first use."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = list(paths)
        self._loaded: dict[str, nn.Module] = {}
        # reconstructions and spectrograms for the page; removed with this object (at the
        # latest when the server's process exits)
        self._workdir = tempfile.TemporaryDirectory(prefix="audio-core-ui-")
        self.workdir = Path(self._workdir.name)

    def get(self, name: str) -> nn.Module:
        from audio_core.engine.export import load

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
        """One clip ``(channels, time)`` from generator ``name``."""
        from audio_core.contracts.models import Generator

        model = self.get(name)
        if not isinstance(model, Generator):
            raise ValueError(f"{name} is not a generative model")
        from audio_core.inference.limits import check_generation

        check_generation(steps=steps or None, guidance=guidance, seconds=seconds or None,
                         sample_rate=model.sample_rate, channels=model.channels)
        conditioning: dict[str, Any] = {}
        for name, keys in model.conditions.items():  # text/label conditioners; others null
            if keys == ("text",):
                conditioning[name] = text or ""
            elif keys == ("label",) and label:
                conditioning[name] = label
        audio = model.generate(conditioning, num_samples=1, steps=steps or None,
                               guidance=guidance, seed=int(seed), seconds=seconds or None)
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
