"""Spectrogram figures for reports (matplotlib, imported lazily, no display needed)."""

from __future__ import annotations

from pathlib import Path

import torch

from audio_core.audio.dsp import MelSpectrogram


def save_spectrogram_comparison(original: torch.Tensor, reconstruction: torch.Tensor,
                                sample_rate: int, path: str | Path) -> Path:
    """Log-mel spectrograms of ``original`` and ``reconstruction`` ``(channels, time)``
    (first channel) stacked in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mel = MelSpectrogram(sample_rate, n_fft=1024, hop_length=256, n_mels=80, log="db",
                         top_db=80.0)
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, constrained_layout=True)
    seconds = original.shape[-1] / sample_rate
    for ax, (title, audio) in zip(axes, (("original", original), ("reconstruction",
                                                                 reconstruction)), strict=True):
        spec = mel(audio[0].float().cpu()).numpy()
        image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                          extent=(0.0, seconds, 0, spec.shape[0]), vmin=spec.max() - 80)
        ax.set(title=title, ylabel="mel bin")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes, label="dB")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
