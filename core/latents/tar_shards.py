"""Latents written as ``core.shards`` tar shards (``audio-core latents --shards``).

The same layout as ``audio-core data pack`` (:mod:`audio_core.data.shards.format`) with
``"content": "latents"``: each item is ``KEY.npy`` (the latent ``(latent_dim, frames)``,
float32 or float16) + ``KEY.json``, so stage 2 reads them with ``core.shards`` from local
disk or object storage. Rank ``r`` writes shards ``r{r:05d}-{n:06d}.tar``; each finished
shard is recorded in ``OUT/progress/rank{r:05d}.jsonl``, so an interrupted run resumes after
the last recorded shard. When every rank is done, rank 0 writes ``index.json``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from audio_core.data.shards.format import FORMAT, INDEX_FILE, VERSION, ShardTarWriter
from audio_core.files import check_readable, write_text
from audio_core.latents.store import LatentsError, append_progress, progress_entries

__all__ = ["TarLatentWriter", "is_tar_latents", "iter_tar_latents", "write_tar_index"]

_NUMPY_DTYPES = {"torch.float32": np.float32, "torch.float16": np.float16}


def _progress_file(root: Path, rank: int) -> Path:
    return root / "progress" / f"rank{rank:05d}.jsonl"


def _read_progress(root: Path, rank: int) -> list[dict[str, Any]]:
    """Finished shards of ``rank`` whose tar is on disk (a torn last line is ignored)."""
    entries = progress_entries(_progress_file(root, rank), _is_tar_entry)
    return [e for e in entries if (root / e["record"]["name"]).is_file()]


def _is_tar_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("record"), dict) and isinstance(
        entry["record"].get("name"), str) and isinstance(entry.get("items"), list)


class TarLatentWriter:
    """One rank's latents as tar shards of about ``shard_bytes``; the interface of
    :class:`audio_core.latents.store.ShardWriter` (``add``, ``flush``, ``done``)."""

    def __init__(self, root: str | Path, rank: int = 0, shard_bytes: int = 256 << 20) -> None:
        self.root, self.rank = Path(root), int(rank)
        (self.root / "progress").mkdir(parents=True, exist_ok=True)
        self.shard_bytes = max(1, int(shard_bytes))
        finished = _read_progress(self.root, self.rank)
        self.done = {int(i) for entry in finished for i in entry["items"]}
        self.shard = max((int(Path(e["record"]["name"]).stem.rsplit("-", 1)[-1])
                          for e in finished), default=-1) + 1
        self._writer: ShardTarWriter | None = None
        self._items: list[int] = []

    def add(self, index: int, latent: Tensor, record: dict[str, Any]) -> None:
        """Add item ``index``'s latent ``(latent_dim, frames)`` with its ``record`` (path,
        label, text, seconds)."""
        dtype = _NUMPY_DTYPES.get(str(latent.dtype))
        if dtype is None:
            raise LatentsError(f"latent shards store float32 or float16 .npy arrays, not "
                               f"{latent.dtype}; use --dtype float32 or float16")
        if self._writer is None:
            self._writer = ShardTarWriter(self.root, f"r{self.rank:05d}-{self.shard:06d}.tar")
        buf = io.BytesIO()
        np.save(buf, latent.detach().cpu().numpy().astype(dtype), allow_pickle=False)
        meta = {"frames": int(latent.shape[-1]), "sample_rate": int(record["sample_rate"]),
                "channels": int(latent.shape[0]), "duration": float(record["seconds"]),
                "label": int(record.get("label", -1)), "text": str(record.get("text", "")),
                "source": str(record.get("path", "")), "index": int(index)}
        self._writer.add(f"i{int(index):09d}", buf.getvalue(), "npy", meta)
        self._items.append(int(index))
        if self._writer.bytes_written >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        """Finish the open shard and record it as done."""
        if self._writer is None:
            return
        record = self._writer.close()
        append_progress(_progress_file(self.root, self.rank),
                        {"record": record.to_dict(), "items": self._items})
        self.done.update(self._items)
        self.shard += 1
        self._writer, self._items = None, []


def write_tar_index(root: str | Path, world_size: int, header: dict[str, Any]) -> Path:
    """Merge every rank's finished shards into ``root/index.json`` (rank, then shard order).

    ``header``: ``model`` (fingerprint, frame_rate, latent_dim ...) and ``dataset``
    (``classes``); the index lists the shards as ``core.shards`` reads them.
    """
    root = Path(root)
    shards = [entry["record"] for rank in range(world_size) for entry in
              _read_progress(root, rank)]
    index = {"format": FORMAT, "version": VERSION, "content": "latents",
             "samples": sum(s["samples"] for s in shards),
             "seconds": round(sum(s["seconds"] for s in shards), 6),
             "classes": list(header.get("dataset", {}).get("classes", [])),
             "sample_rate": None, "model": header["model"], "world_size": world_size,
             "shards": shards}
    return write_text(root / INDEX_FILE, json.dumps(index, indent=1))


def is_tar_latents(root: str | Path) -> dict[str, Any] | None:
    """``root/index.json`` if ``root`` holds latents as tar shards, else None."""
    path = Path(root) / INDEX_FILE
    check_readable(path, "latents index")  # unreadable is not "not latents"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(index, dict) and index.get("format") == FORMAT and \
            index.get("content") == "latents":
        return index
    return None


def iter_tar_latents(root: str | Path) -> Iterator[Tensor]:
    """Every whole latent ``(latent_dim, frames)`` of a tar-shard latents folder, in order."""
    from audio_core.data.shards.dataset import ShardDataset

    dataset = ShardDataset(str(root), segment_seconds=None, shuffle=False)
    for i in range(len(dataset)):
        yield dataset[i]["latent"]
