"""Pre-encoded latents on disk: sharded safetensors, one shard set per rank, plus an index.

Layout of a latents folder (``audio-core latents MODEL DATA OUT``)::

    OUT/index.json                  the source model (path, fingerprint, geometry), the
                                    dataset, the classes, and one record per item
    OUT/rank00000/shard-00000.safetensors   latents (latent_dim, frames), keyed by item index
    OUT/rank00000/progress.jsonl    one line per completed shard: the records of its items

Each rank writes the items ``i % world_size == rank`` into its own folder. A shard is written
atomically and then recorded in ``progress.jsonl``, so an interrupted run resumes after the
last recorded shard (a shard written but not recorded is written again). When every rank is
done, rank 0 merges the progress files into ``index.json`` (item order).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import Tensor

from audio_core.errors import AudioCoreError

INDEX_FILE = "index.json"
PROGRESS_FILE = "progress.jsonl"
FORMAT = "audio-core latents v1"


class LatentsError(AudioCoreError, ValueError):
    """A latents folder is missing, incomplete or from another model."""


def rank_dir(root: Path, rank: int) -> Path:
    return root / f"rank{rank:05d}"


class ShardWriter:
    """Writes one rank's latents into shards of about ``shard_bytes`` each, resumably."""

    def __init__(self, root: str | Path, rank: int = 0, shard_bytes: int = 256 << 20) -> None:
        self.dir = rank_dir(Path(root), rank)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shard_bytes = max(1, int(shard_bytes))
        self.records = read_progress(self.dir)
        self.done = {int(r["index"]) for r in self.records}
        self.shard = len({r["shard"] for r in self.records})
        self._tensors: dict[str, Tensor] = {}
        self._pending: list[dict[str, Any]] = []
        self._bytes = 0

    def add(self, index: int, latent: Tensor, record: dict[str, Any]) -> None:
        """Queue item ``index``'s latent ``(latent_dim, frames)`` with its ``record``."""
        name = f"shard-{self.shard:05d}.safetensors"
        self._tensors[str(index)] = latent.detach().cpu().contiguous()
        self._pending.append({**record, "index": int(index), "shard": f"{self.dir.name}/{name}",
                              "frames": int(latent.shape[-1])})
        self._bytes += latent.numel() * latent.element_size()
        if self._bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the queued latents as the next shard, then record them."""
        if not self._tensors:
            return
        from safetensors.torch import save_file

        path = self.dir / f"shard-{self.shard:05d}.safetensors"
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(self._tensors, str(tmp), metadata={"format": FORMAT})
        os.replace(tmp, path)
        with (self.dir / PROGRESS_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps({"shard": self.shard, "items": self._pending}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records += self._pending
        self.done.update(r["index"] for r in self._pending)
        self.shard += 1
        self._tensors, self._pending, self._bytes = {}, [], 0


def read_progress(folder: Path) -> list[dict[str, Any]]:
    """The item records of the shards ``folder`` completed (a torn last line is ignored)."""
    path = folder / PROGRESS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break  # interrupted while appending: that shard is redone
        if (folder / f"shard-{int(entry['shard']):05d}.safetensors").is_file():
            records += entry["items"]
    return records


def write_index(root: str | Path, world_size: int, header: dict[str, Any]) -> Path:
    """Merge the progress of ``world_size`` ranks into ``root/index.json``."""
    root = Path(root)
    items = [r for rank in range(world_size) for r in read_progress(rank_dir(root, rank))]
    items.sort(key=lambda r: r["index"])
    index = {"format": FORMAT, **header, "world_size": world_size, "items": items}
    tmp = root / f".{INDEX_FILE}.tmp"
    tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
    os.replace(tmp, root / INDEX_FILE)
    return root / INDEX_FILE


def read_index(root: str | Path) -> dict[str, Any]:
    """The index of a latents folder; :class:`LatentsError` naming the folder otherwise."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise LatentsError(f"{root} is not a latents folder: {INDEX_FILE} is missing (make it "
                           f"with `audio-core latents MODEL DATA {root}`; an interrupted run "
                           f"resumes when run again)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LatentsError(f"{path} is not valid JSON: {exc}") from exc
    if index.get("format") != FORMAT:
        raise LatentsError(f"{path} is not an audio-core latents index (format "
                           f"{index.get('format')!r}, expected {FORMAT!r})")
    return index


class ShardReader:
    """Reads latents by item record, keeping shard files open (memory-mapped)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._open: dict[str, Any] = {}

    def read(self, record: dict[str, Any], start: int = 0, stop: int | None = None) -> Tensor:
        """Frames ``[start, stop)`` of the item's latent ``(latent_dim, frames)``."""
        from safetensors import safe_open

        shard = record["shard"]
        handle = self._open.get(shard)
        if handle is None:
            path = self.root / shard
            if not path.is_file():
                raise LatentsError(f"latent shard {path} is missing")
            handle = self._open[shard] = safe_open(str(path), framework="pt")
        view = handle.get_slice(str(record["index"]))
        return view[:, start:stop if stop is not None else record["frames"]]

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers open their own handles
        return {"root": self.root, "_open": {}}


def iter_latents(root: str | Path) -> Iterator[tuple[dict[str, Any], Tensor]]:
    """Every item record of a latents folder with its whole latent."""
    reader = ShardReader(root)
    for record in read_index(root)["items"]:
        yield record, reader.read(record)
