"""Latent files: one audio file's continuous latent, written by ``audio-core encode --latent``.

Format (safetensors): tensor ``latent`` float32 ``(latent_dim, frames)`` with ``frames =
ceil(length / hop_length)``, and string metadata (JSON values): ``format`` (``"audio-core
latent v1"``), ``model_fingerprint`` (:func:`~audio_core.models.fingerprint.model_fingerprint`
of the encoding model), ``sample_rate``, ``channels``, ``hop_length``, ``frame_rate``,
``latent_dim``, ``length`` (samples of the source at the model's rate) and ``source`` (the
input path). Any safetensors reader opens it; ``audio-core decode --latent`` checks the
fingerprint and decodes it back with the model that wrote it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from audio_core.errors import AudioCoreError

LATENT_FORMAT = "audio-core latent v1"
HEADER_KEYS = ("model_fingerprint", "sample_rate", "channels", "hop_length", "frame_rate",
               "latent_dim", "length", "source")


class LatentFileError(AudioCoreError, ValueError):
    """A latent file is malformed or was written by another model."""


def write_latent_file(path: str | os.PathLike, latent: Tensor, header: dict[str, Any]) -> Path:
    """Write ``latent`` ``(latent_dim, frames)`` and ``header`` (:data:`HEADER_KEYS`)."""
    from audio_core.files import save_safetensors

    missing = [k for k in HEADER_KEYS if k not in header]
    if missing or latent.ndim != 2:
        raise LatentFileError(f"a latent file needs a (latent_dim, frames) tensor and header "
                              f"keys {', '.join(HEADER_KEYS)}; got shape "
                              f"{tuple(latent.shape)}, missing {missing}")
    meta = {"format": LATENT_FORMAT, **{k: json.dumps(header[k]) for k in HEADER_KEYS}}
    return save_safetensors({"latent": latent.float()}, path, metadata=meta)


def is_latent_file(path: Path) -> bool:
    """True when ``path`` is a latent file (an earlier output of ``encode --latent``)."""
    try:
        read_latent_file(path)
    except LatentFileError:
        return False
    return True


def read_latent_file(path: str | os.PathLike) -> tuple[Tensor, dict[str, Any]]:
    """``(latent (latent_dim, frames), header)``; :class:`LatentFileError` naming the file
    when it is missing or not a latent file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise LatentFileError(f"latent file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            latent = f.get_tensor("latent") if "latent" in f.keys() else None  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise LatentFileError(f"{path} is not a latent file: {exc}") from exc
    if meta.get("format") != LATENT_FORMAT or latent is None:
        raise LatentFileError(f"{path} is not a latent file (expected safetensors with a "
                              f"'latent' tensor and format '{LATENT_FORMAT}', written by "
                              f"`audio-core encode --latent`)")
    return latent, {k: json.loads(meta[k]) for k in HEADER_KEYS if k in meta}


def encode_latent_file(model: Any, source: str | os.PathLike, target: str | os.PathLike, *,
                       chunk_seconds: float = 30.0, context_seconds: float = 1.0
                       ) -> dict[str, Any]:
    """Encode audio file ``source`` (resampled to the model's rate and channels) with an
    autoencoder's ``encode`` (chunked on the frame grid, as ``audio-core latents`` does)
    into latent file ``target``; returns the header written."""
    from audio_core.audio.io import load_audio
    from audio_core.latents.encode import check_autoencoder, encode_latents
    from audio_core.models.fingerprint import model_fingerprint

    model = check_autoencoder(model)
    audio, _ = load_audio(source, sample_rate=model.sample_rate, channels=model.channels)
    latent = encode_latents(model, audio, chunk_seconds=chunk_seconds,
                            context_seconds=context_seconds)
    header = {"model_fingerprint": model_fingerprint(model), "sample_rate": model.sample_rate,
              "channels": model.channels, "hop_length": model.hop_length,
              "frame_rate": model.frame_rate, "latent_dim": model.latent_dim,
              "length": int(audio.shape[-1]), "source": str(source)}
    write_latent_file(target, latent, header)
    return header


@torch.no_grad()
def decode_latent_file(model: Any, source: str | os.PathLike, target: str | os.PathLike
                       ) -> dict[str, Any]:
    """Decode latent file ``source`` with ``model`` (the model that wrote it: another
    fingerprint, rate, hop or width is an error naming both) into audio file ``target`` of
    the original length."""
    from audio_core.audio.io import save_audio
    from audio_core.latents.encode import check_autoencoder
    from audio_core.models.fingerprint import model_fingerprint

    model = check_autoencoder(model)
    latent, header = read_latent_file(source)
    fingerprint = model_fingerprint(model)
    expected = {"sample_rate": model.sample_rate, "hop_length": model.hop_length,
                "latent_dim": model.latent_dim}
    wrong = [f"{k} {header.get(k)} in the file, {v} in the model"
             for k, v in expected.items() if header.get(k) != v]
    if wrong or header.get("model_fingerprint") != fingerprint:
        detail = f" ({'; '.join(wrong)})" if wrong else ""
        raise LatentFileError(f"{source} was encoded by a model with fingerprint "
                              f"{header.get('model_fingerprint')}, not by this one "
                              f"({fingerprint}){detail}. Decode it with the model (and "
                              f"weights: --ema or not) that encoded it.")
    p = next(model.parameters(), None)
    z = latent[None] if p is None else latent[None].to(p.device, p.dtype)
    audio = model.decode(z, int(header["length"]))[0].float().cpu()
    save_audio(target, audio.clamp(-1, 1), model.sample_rate)
    return {"latent": str(source), "output": str(target), "sample_rate": model.sample_rate,
            "seconds": header["length"] / model.sample_rate, "frames": int(latent.shape[-1])}
