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
from collections.abc import Callable, Iterator
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
        entries = progress_entries(self.dir / PROGRESS_FILE, _is_shard_entry)
        entries = [e for e in entries if (self.dir / _shard_name(e["shard"])).is_file()]
        self.records = [r for e in entries for r in e["items"]]
        self.done = {int(r["index"]) for r in self.records}
        self.shard = max((int(e["shard"]) for e in entries), default=-1) + 1
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
        from audio_core.files import save_safetensors

        save_safetensors(self._tensors, self.dir / _shard_name(self.shard),
                         metadata={"format": FORMAT})
        append_progress(self.dir / PROGRESS_FILE, {"shard": self.shard, "items": self._pending})
        self.records += self._pending
        self.done.update(r["index"] for r in self._pending)
        self.shard += 1
        self._tensors, self._pending, self._bytes = {}, [], 0


def _shard_name(shard: int) -> str:
    return f"shard-{int(shard):05d}.safetensors"


def _is_shard_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("shard"), int) and isinstance(
        entry.get("items"), list) and all(isinstance(r, dict) and isinstance(
            r.get("index"), int) for r in entry["items"])


def progress_entries(path: Path, valid: Callable[[Any], bool]) -> list[dict[str, Any]]:
    """The complete entries of a progress file (one JSON object a line). A line torn by a
    crash or power cut (not JSON, or not ``valid``) is dropped, and the file is rewritten
    without it, so the shards it stood for are redone and later lines are not lost."""
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    entries, torn = [], False
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            entry = None
        if valid(entry):
            entries.append(entry)
        else:
            torn = True
    if torn or (lines and lines[-1]):  # rewrite: no torn line, ends with a newline
        import logging

        if torn:
            logging.getLogger(__name__).warning(
                "%s: dropped a torn progress line (an interrupted write); its shard is "
                "encoded again", path)
        from audio_core.files import write_text

        write_text(path, "".join(json.dumps(e) + "\n" for e in entries))
    return entries


def append_progress(path: Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` as one line and sync it to disk."""
    from audio_core.files import write_error

    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise write_error(path, exc) from exc


def read_progress(folder: Path) -> list[dict[str, Any]]:
    """The item records of the shards ``folder`` completed (torn lines are dropped)."""
    entries = progress_entries(folder / PROGRESS_FILE, _is_shard_entry)
    return [r for e in entries if (folder / _shard_name(e["shard"])).is_file()
            for r in e["items"]]


def write_index(root: str | Path, world_size: int, header: dict[str, Any]) -> Path:
    """Merge the progress of ``world_size`` ranks into ``root/index.json``."""
    root = Path(root)
    items = [r for rank in range(world_size) for r in read_progress(rank_dir(root, rank))]
    items.sort(key=lambda r: r["index"])
    index = {"format": FORMAT, **header, "world_size": world_size, "items": items}
    from audio_core.files import write_text

    return write_text(root / INDEX_FILE, json.dumps(index, indent=1))


def read_index(root: str | os.PathLike) -> dict[str, Any]:
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
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        got = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise LatentsError(f"{path} is not an audio-core latents index (format "
                           f"{got!r}, expected {FORMAT!r})")
    check_items(index, Path(root))
    return index


def check_items(index: dict[str, Any], root: Path) -> None:
    """:class:`LatentsError` naming the first bad item of a latents ``index``: each needs an
    integer ``index``, a ``shard`` path inside ``root`` that exists, and a ``frames`` count
    that fits its shard's size and agrees with its ``seconds`` at the model's frame rate."""
    where = root / INDEX_FILE
    model, items = index.get("model"), index.get("items")
    if not isinstance(model, dict) or not isinstance(items, list):
        raise LatentsError(f"{where}: 'model' must be an object and 'items' a list")
    dim, rate = model.get("latent_dim"), model.get("frame_rate")
    if not isinstance(dim, int) or dim < 1 or not isinstance(rate, int | float) or rate <= 0:
        raise LatentsError(f"{where}: model.latent_dim and model.frame_rate must be positive "
                           f"numbers, got {dim!r} and {rate!r}")
    real_root, sizes = os.path.realpath(root), {}
    for n, item in enumerate(items):
        bad = _bad_item(item, real_root, dim, rate, sizes)
        if bad:
            raise LatentsError(f"{where}: item {n} {bad}; the index is damaged or was edited "
                               f"(run `audio-core latents` again into a new folder)")


def _bad_item(item: Any, real_root: str, dim: int, rate: float, sizes: dict[str, int]
              ) -> str | None:
    if not isinstance(item, dict):
        return "is not an object"
    index, shard, frames, seconds = (item.get(k) for k in ("index", "shard", "frames",
                                                           "seconds"))
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        return f"has index {index!r}, expected an integer >= 0"
    if not isinstance(shard, str) or os.path.isabs(shard) or not os.path.realpath(
            os.path.join(real_root, shard)).startswith(real_root + os.sep):
        return f"names shard {shard!r}, expected a path inside the latents folder"
    if shard not in sizes:
        try:
            sizes[shard] = os.path.getsize(os.path.join(real_root, shard))
        except OSError:
            return f"names shard {shard!r}, which is missing"
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1 \
            or frames * dim * 2 > sizes[shard]:
        return (f"has frames {frames!r}, expected an integer from 1 to what its shard "
                f"({sizes[shard]} bytes) can hold")
    if isinstance(seconds, int | float) and abs(frames - seconds * rate) > 2 + 0.01 * frames:
        return f"has {frames} frames for {seconds} s at {rate} frames/s"
    return None


class ShardReader:
    """Reads latents by item record, keeping shard files open (memory-mapped)."""

    def __init__(self, root: str | os.PathLike) -> None:
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


#: What a latents folder was started with: model, dataset and settings fingerprints.
KEY_FILE = "latents.json"


def is_latents_folder(root: Path) -> bool:
    """True when ``root`` was written by ``audio-core latents`` (finished or not)."""
    from audio_core.inference.paths import folder_kind

    return folder_kind(root) == "latents"


def claim_latents_folder(out: str | os.PathLike, inputs: dict[str, str], *,
                         overwrite: bool = False) -> Path | None:
    """Check ``latents``' OUT before any work: not an input, not inside an export, run or
    other latents folder, a writable folder that is absent, empty or an earlier latents
    folder (resumed); anything else is refused, or with ``overwrite`` moved aside (also an
    earlier latents folder: start over). Returns where an old folder was moved."""
    from audio_core.inference.paths import (
        OutputPathError,
        check_writable_parent,
        move_aside,
        protected_folder,
        same_file,
    )

    out = Path(out)
    for label, source in inputs.items():
        if same_file(out, source):
            raise OutputPathError(f"OUT '{out}' is {label} '{source}'; choose a new folder")
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"OUT '{out}' exists and is not a folder")
    owner = protected_folder(out)
    if owner is not None:
        raise OutputPathError(f"OUT '{out}' is inside {owner}; choose a folder outside it")
    check_writable_parent(out / KEY_FILE)
    if not out.is_dir() or not any(out.iterdir()):
        return None
    if overwrite:
        return move_aside(out)
    if not is_latents_folder(out):
        shown = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise OutputPathError(f"OUT '{out}' holds files that `audio-core latents` did not "
                              f"write ({shown}); refusing to write there. Choose a new or "
                              f"empty folder, or pass --overwrite (it is moved aside to "
                              f"{out.name}.old-<time>, not deleted)")
    return None


def check_latents_key(root: Path, key: dict[str, Any], write: bool) -> None:
    """Compare ``key`` (model, data and settings fingerprints) with the one ``root`` was
    started with: a mismatch is :class:`LatentsError` naming both (resuming would mix
    latents of two models or datasets). With ``write``, a new folder records ``key``."""
    from audio_core.files import write_text

    path = root / KEY_FILE
    stored: Any = None
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LatentsError(f"{path} is unreadable ({exc}); start OUT over with "
                               f"--overwrite") from exc
    elif (root / INDEX_FILE).is_file():  # written before key files existed
        model = read_index(root).get("model") or {}
        stored = {**key, "model": model.get("fingerprint")}
    if stored is None:
        if write:
            write_text(path, json.dumps(key, indent=1))
        return
    if not isinstance(stored, dict):
        raise LatentsError(f"{path} is not a latents key file; start OUT over with --overwrite")
    changed = [name for name in key if stored.get(name) != key[name]]
    if changed:
        shown = "; ".join(f"{name}: {stored.get(name)} in OUT, {key[name]} now"
                          for name in changed)
        raise LatentsError(f"{root} holds latents of another {' and '.join(changed)} "
                           f"({shown}); resuming would mix them. Use a new OUT, the same "
                           f"MODEL and DATA, or --overwrite to start over")
