"""Encode audio and datasets into latents with a frozen (exported) autoencoder.

``encode_latents`` encodes a long signal in chunks on the latent frame grid, each with
``context_seconds`` of audio on either side whose frames are discarded, so the chunks join
into exactly ``ceil(time / hop_length)`` frames (as token encoding does,
:mod:`audio_core.inference.codec`). ``pre_encode`` writes a dataset's latents as shards
(:mod:`audio_core.latents.store`); ``latent_statistics`` measures per-channel mean/std.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from audio_core.contracts.models import Autoencoder
from audio_core.errors import AudioCoreError
from audio_core.latents.store import ShardWriter, read_index, write_index
from audio_core.models.latent_stats import RunningMoments


class NotAnAutoencoder(AudioCoreError, TypeError):
    """Latents need a model with encode/decode (:class:`Autoencoder`)."""


def check_autoencoder(model: Any) -> Autoencoder:
    if not isinstance(model, Autoencoder):
        raise NotAnAutoencoder(f"this model ({type(model).__name__}) has no continuous latent: "
                               f"latents and statistics need an autoencoder "
                               f"(audio_core.models.Autoencoder)")
    return model


def raw_latent(model: Autoencoder, audio: Tensor) -> Tensor:
    """What statistics describe: ``model.features`` (e.g. a frozen encoder's raw features,
    before the normalisation they define; by default ``model.encode``)."""
    return model.features(audio)


@torch.no_grad()
def encode_latents(model: Autoencoder, audio: Tensor, *, chunk_seconds: float = 30.0,
                   context_seconds: float = 1.0, raw: bool = False) -> Tensor:
    """Audio ``(channels, time)`` at the model's rate -> latent ``(latent_dim, ceil(time /
    hop_length))``, fp32, chunked on the frame grid (see the module docstring)."""
    from audio_core.inference.codec import frame_spans

    if chunk_seconds <= 0 or context_seconds < 0:
        raise ValueError(f"chunk seconds must be > 0 and context seconds >= 0, got "
                         f"{chunk_seconds} and {context_seconds}")
    hop = model.hop_length
    frames = -(-audio.shape[-1] // hop)
    chunk = max(1, int(chunk_seconds * model.sample_rate) // hop)
    context = math.ceil(context_seconds * model.sample_rate / hop)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    audio = F.pad(audio.float(), (0, frames * hop - audio.shape[-1])).to(device)
    fn = raw_latent if raw else (lambda m, x: m.encode(x))
    pieces = []
    for start, end, lo, hi in frame_spans(frames, chunk, context):
        piece = fn(model, audio[None, :, lo * hop:hi * hop])[0].float()
        if piece.shape[-1] != hi - lo:
            raise AudioCoreError(f"the encoder gave {piece.shape[-1]} frames for "
                                 f"{(hi - lo) * hop} samples; chunked encoding needs "
                                 f"samples / hop_length = {hi - lo}")
        pieces.append(piece[:, start - lo:end - lo].cpu())
    return torch.cat(pieces, -1) if pieces else torch.zeros(model.latent_dim, 0)


def model_header(model: Autoencoder, source: str) -> dict[str, Any]:
    """What a latents index records about the model that made it."""
    from audio_core.models.build import model_type
    from audio_core.models.fingerprint import model_fingerprint

    cfg = getattr(model, "config", None)
    return {"model": {"source": str(source), "fingerprint": model_fingerprint(model),
                      "type": model_type(cfg) if cfg is not None else type(model).__name__,
                      "sample_rate": model.sample_rate, "channels": model.channels,
                      "hop_length": model.hop_length, "latent_dim": model.latent_dim,
                      "frame_rate": model.frame_rate}}


def _digest(value: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]


def dataset_fingerprint(dataset: Any) -> str:
    """A digest of what ``dataset`` holds: its files (paths, sizes, times) when it lists
    them, its size, classes and captions; another folder or caption file gives another."""
    files = [str(getattr(f, "path", f)) for f in getattr(dataset, "files", None) or []]
    stamps = []
    for f in files:
        try:
            st = os.stat(f)
            stamps.append((f, st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append((f, None, None))
    return _digest({"size": len(dataset), "files": stamps,
                    "classes": list(getattr(dataset, "classes", []) or []),
                    "texts": sorted(dict(getattr(dataset, "texts", None) or {}).items()),
                    "type": type(dataset).__name__})


def pre_encode(model: Any, dataset: Any, out: str | Path, *, source: str = "",
               rank: int = 0, world_size: int = 1, chunk_seconds: float = 30.0,
               context_seconds: float = 1.0, shard_mb: float = 256.0,
               dtype: torch.dtype = torch.float32, show_progress: bool = True,
               barrier: Callable[[], None] = lambda: None,
               tar_shards: bool = False) -> dict[str, Any]:
    """Write the latents of ``dataset`` (items ``i % world_size == rank`` on this rank) to
    ``out``; resumes after the shards already recorded. Rank 0 writes ``index.json`` once
    every rank is done (``barrier``). Returns counts and timing of this rank.

    ``tar_shards``: the ``core.shards`` layout (:mod:`audio_core.latents.tar_shards`),
    readable from object storage, instead of ``core.latents``' safetensors shards."""
    from audio_core.latents.store import check_latents_key
    from audio_core.latents.tar_shards import TarLatentWriter, write_tar_index
    from audio_core.models.fingerprint import model_fingerprint

    model = check_autoencoder(model)
    out = Path(out)
    settings = {"chunk_seconds": chunk_seconds, "context_seconds": context_seconds,
                "dtype": str(dtype), "tar_shards": bool(tar_shards), "world_size": world_size}
    key = {"model": model_fingerprint(model), "data": dataset_fingerprint(dataset),
           "settings": _digest(settings)}
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        check_latents_key(out, key, write=True)
    barrier()
    if rank != 0:
        check_latents_key(out, key, write=False)
    layout = TarLatentWriter if tar_shards else ShardWriter
    writer = layout(out, rank, int(shard_mb * (1 << 20)))
    mine = [i for i in range(rank, len(dataset), world_size) if i not in writer.done]
    started, seconds = time.perf_counter(), 0.0
    for i in tqdm(mine, desc="latents", unit="item", disable=not show_progress or rank != 0):
        item = dataset[i]
        audio = item["audio"][..., :int(item.get("length", item["audio"].shape[-1]))]
        latent = encode_latents(model, audio, chunk_seconds=chunk_seconds,
                                context_seconds=context_seconds)
        seconds += audio.shape[-1] / model.sample_rate
        writer.add(i, latent.to(dtype), {
            "path": str(item.get("path", "")), "label": int(item.get("label", -1)),
            "text": str(item.get("text", "")), "seconds": audio.shape[-1] / model.sample_rate,
            "sample_rate": model.sample_rate})
    writer.flush()
    barrier()
    if rank == 0:
        header = model_header(model, source)
        header["dataset"] = {"size": len(dataset),
                             "classes": list(getattr(dataset, "classes", []) or [])}
        (write_tar_index if tar_shards else write_index)(out, world_size, header)
    barrier()
    elapsed = time.perf_counter() - started
    return {"items": len(mine), "audio_seconds": seconds, "elapsed_s": elapsed,
            "audio_s_per_s": seconds / max(elapsed, 1e-9)}


@torch.no_grad()
def latent_statistics(model: Any, data: Any, *, chunk_seconds: float = 30.0,
                      context_seconds: float = 1.0, rank: int = 0, world_size: int = 1,
                      features: bool = False, show_progress: bool = True
                      ) -> tuple[RunningMoments, int]:
    """Per-channel moments of ``model``'s latents over ``data``: a latents folder (read
    directly; its model fingerprint must be ``model``'s) or a dataset (encoded here, items
    ``i % world_size == rank``; merged over ranks). The latents are ``model.encode``'s (what
    a stage-2 model trains on), or with ``features=True`` a frozen encoder's raw features
    (for that model's own ``latent_stats``). Returns the moments and item count."""
    from audio_core.latents.store import iter_latents

    model = check_autoencoder(model)
    moments = RunningMoments(model.latent_dim)
    count = 0
    if isinstance(data, str | Path):
        from audio_core.latents.store import LatentsError
        from audio_core.models.fingerprint import model_fingerprint

        if features:
            raise LatentsError("raw features cannot be read from a latents folder (it holds "
                               "model.encode's latents): give an audio dataset")
        from audio_core.latents.tar_shards import is_tar_latents, iter_tar_latents

        tar = is_tar_latents(data)
        index: dict[str, Any] = {} if tar else read_index(data)
        have = tar["model"]["fingerprint"] if tar else index["model"]["fingerprint"]
        want = model_fingerprint(model)
        if want != have:
            raise LatentsError(f"{data} holds latents of a model with fingerprint {have}, "
                               f"not of this model ({want})")
        latents = iter_tar_latents(data) if tar else (x for _, x in iter_latents(data))
        total = tar["samples"] if tar else len(index["items"])
        for latent in tqdm(latents, total=total, desc="stats",
                              unit="item", disable=not show_progress):
            moments.update(latent.float())
            count += 1
        return moments, count
    mine = range(rank, len(data), world_size)
    for i in tqdm(mine, desc="stats", unit="item", disable=not show_progress or rank != 0):
        item = data[i]
        audio = item["audio"][..., :int(item.get("length", item["audio"].shape[-1]))]
        moments.update(encode_latents(model, audio, chunk_seconds=chunk_seconds,
                                      context_seconds=context_seconds, raw=features))
        count += 1
    moments.all_reduce()
    return moments, count
