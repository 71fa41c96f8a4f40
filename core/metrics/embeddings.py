"""Audio embeddings for the Fréchet audio distance: a registered component kind
(``embedding``, hook ``audio_core_register_embeddings``).

An embedding maps one clip ``(channels, time)`` at its own ``sample_rate`` to frame
embeddings ``(frames, dim)``; FAD fits a Gaussian to all frames of a set of clips. Each
embedding has a ``name`` and a ``layer`` that are recorded with every score.

- ``core.logmel`` (the offline default, no weights): mean and standard deviation of
  log-mel bands over windows of ``window_frames`` STFT frames.
- ``core.torchscript``: any TorchScript module (``torch.jit.save``) or ``torch.export``
  program (``.pt2``) saved at a local ``path`` (VGGish, PANNs, a CLAP audio tower, ...
  exported once), called on
  ``(batch=1, time)`` mono audio at its ``sample_rate`` and returning ``(frames, dim)``,
  ``(1, frames, dim)`` or ``(1, dim)``; ``layer`` picks an output from a tuple/dict.
- ``core.codec_latent``: the encoder latents of an audio-core export or run folder at a
  local ``path`` (e.g. an EnCodec-style codec trained with audio-core), ``(frames, dim)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor

from audio_core.audio.dsp import MelSpectrogram
from audio_core.audio.resample import resample
from audio_core.contracts.components import Embedding
from audio_core.errors import AudioCoreError


class EmbeddingError(AudioCoreError, ValueError):
    """An embedding model is missing or returned something that is not ``(frames, dim)``."""


class AudioEmbedding(Embedding):
    """Base class: ``embed(audio (channels, time), sample_rate) -> (frames, dim)`` float64
    (the :class:`~audio_core.contracts.components.Embedding` contract).

    Subclasses set ``name``, ``layer``, ``sample_rate`` and implement :meth:`frames` on
    mono audio ``(time,)`` already at ``sample_rate``.
    """

    name = "embedding"
    layer = "output"
    sample_rate = 16000

    def frames(self, mono: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def embed(self, audio: Tensor, sample_rate: int) -> Tensor:
        mono = audio.float().mean(dim=0) if audio.ndim == 2 else audio.float()
        if sample_rate != self.sample_rate:
            mono = resample(mono, sample_rate, self.sample_rate)
        out = self.frames(mono)
        if out.ndim == 1:
            out = out[None]
        if out.ndim != 2:
            raise EmbeddingError(f"embedding '{self.name}' returned shape {tuple(out.shape)}; "
                                 f"expected (frames, dim)")
        return out.double().cpu()


class LogMelEmbedding(AudioEmbedding):
    """Mean and std of ``n_mels`` log-mel bands (dB) over windows of ``window_frames``
    frames (hop ``hop_length``): ``(windows, 2 * n_mels)``. Needs no weights.

    Levels are floored ``top_db`` below each clip's loudest bin, as in VGGish's
    ``log(mel + 0.01)``: without a floor, bands a codec leaves empty (Opus above its
    cut-off, digital silence) sit at the ``1e-10`` clamp, -100 dB, and their distance to
    any real content swamps the score.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, n_fft: int = 1024,
                 hop_length: int = 256, window_frames: int = 16,
                 top_db: float = 80.0) -> None:
        self.name, self.layer, self.sample_rate = "core.logmel", "mean_std", int(sample_rate)
        self.window = int(window_frames)
        self.mel = MelSpectrogram(self.sample_rate, n_fft=n_fft, hop_length=hop_length,
                                  n_mels=n_mels, log="db", top_db=float(top_db))

    def frames(self, mono: Tensor) -> Tensor:
        spec = self.mel(mono)  # (n_mels, frames)
        usable = max(self.window, spec.shape[-1] - spec.shape[-1] % self.window)
        if spec.shape[-1] < usable:
            spec = torch.nn.functional.pad(spec, (0, usable - spec.shape[-1]),
                                           mode="replicate")
        windows = rearrange(spec[:, :usable], "m (w f) -> w m f", f=self.window)
        return torch.cat([windows.mean(-1), windows.std(-1, unbiased=False)], dim=-1)


def local_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise EmbeddingError(f"{what} '{path}' does not exist; embedding models load from a "
                             f"local path only (no downloads)")
    return path


class TorchScriptEmbedding(AudioEmbedding):
    """A TorchScript audio model at local ``path``, called on ``(1, time)`` mono audio at
    ``sample_rate``; ``layer``: an index or key into a tuple/dict output."""

    def __init__(self, path: str, sample_rate: int = 16000, layer: str | int | None = None,
                 name: str | None = None) -> None:
        file = local_file(path, "TorchScript embedding model")
        if file.suffix == ".pt2":  # a torch.export program
            self.model = torch.export.load(str(file)).module()
        else:
            self.model = torch.jit.load(str(file), map_location="cpu").eval()
        self.sample_rate, self.key = int(sample_rate), layer
        self.name = name or f"torchscript:{file.name}"
        self.layer = "output" if layer is None else str(layer)

    def frames(self, mono: Tensor) -> Tensor:
        out = self.model(mono[None])
        if self.key is not None:
            out = out[self.key] if isinstance(out, dict) else out[int(self.key)]
        elif isinstance(out, tuple | list):
            out = out[0]
        return out[0] if out.ndim == 3 else out


def build_embedding(name: str = "core.logmel", params: dict | None = None,
                    registry=None) -> AudioEmbedding:
    """The registered embedding ``name`` built with ``params``."""
    from audio_core.plugins import get_registry

    registry = registry or get_registry()
    return registry.build("embedding", name, params or {}, path="--embedding")
