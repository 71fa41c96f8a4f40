"""Where shards are and how their bytes are read: local paths or any fsspec URL.

``params.urls`` of ``core.shards`` may be:

- a folder (path or URL) written by ``audio-core data pack``: its ``index.json`` is read;
- the ``index.json`` itself (path or URL);
- a brace pattern of tar shards, ``s3://bucket/train/shard-{000000..000099}.tar``;
- a list of any of these.

Tar shards named without an index need their ``.idx.json`` member index beside them, or
are scanned once (tar headers and ``KEY.json`` members) when the dataset is built.
Remote reads go through fsspec (``s3://`` with s3fs, ``http(s)://`` with aiohttp, ``gs://``
...); credentials come from the environment as each backend reads them (for S3:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``), or from
``storage_options``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tarfile
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from audio_core.data.shards.format import (
    INDEX_FILE,
    PAYLOAD_EXTENSIONS,
    ShardFormatError,
    ShardMembers,
    ShardRecord,
    index_name,
    parse_index,
)

__all__ = ["ShardIOError", "ShardSet", "ShardSource", "resolve_shards"]

log = logging.getLogger("audio_core.data")

_RETRIES = (0.2, 1.0, 3.0)  # seconds to wait before each retry of a failed remote read


class ShardIOError(ShardFormatError):
    """A shard or one of its members cannot be read (missing, truncated, connection lost).

    ``shard`` names the shard URL and ``member`` the member (``""`` for the whole shard).
    """

    def __init__(self, shard: str, member: str, reason: str) -> None:
        self.shard, self.member, self.reason = shard, member, reason
        where = f"{shard}:{member}" if member else shard
        super().__init__(f"{where}: {reason}")


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


class ShardSource:
    """Reads whole small files and byte ranges of shards, local or remote (fsspec).

    Byte ranges are served from a per-process LRU of aligned blocks (``block_size``, up to
    ``cache_bytes`` in all): the shuffle buffer reads members in a window of nearby ones, so
    one block read (one request remotely) serves the dozens of samples it holds, instead
    of one random read per sample. ``block_size=0`` reads exactly each range. Failed remote
    reads are retried (:data:`_RETRIES`) before :class:`ShardIOError`. Picklable:
    DataLoader workers reopen their own handles and start with an empty cache.
    """

    def __init__(self, storage_options: Mapping[str, Any] | None = None,
                 block_size: int = 1 << 20, cache_bytes: int = 64 << 20,
                 open_files: int = 4) -> None:
        self.storage_options = dict(storage_options or {})
        self.block_size, self.max_open = int(block_size), int(open_files)
        self.cache_bytes = int(cache_bytes)
        self._open: OrderedDict[Any, Any] = OrderedDict()
        self._filesystems: dict[str, Any] = {}
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cached = 0
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_open": OrderedDict(), "_filesystems": {},
                "_blocks": OrderedDict(), "_cached": 0, "_pid": -1}

    def _fs(self, url: str):
        import fsspec

        fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        return fs, path

    def read_text(self, url: str) -> str:
        """A whole (small) file as text; :class:`ShardIOError` if it cannot be read."""
        def once() -> bytes:
            if not _is_url(url):
                with open(url.removeprefix("file://"), "rb") as f:
                    return f.read()
            fs, path = self._fs(url)
            return fs.cat_file(path)
        return self._retrying(url, "", once).decode("utf-8")

    def exists(self, url: str) -> bool:
        if not _is_url(url):
            return os.path.exists(url.removeprefix("file://"))
        try:
            fs, path = self._fs(url)
            return bool(fs.exists(path))
        except Exception:
            return False

    def read_range(self, url: str, offset: int, size: int, member: str = "") -> bytes:
        """``size`` bytes of ``url`` from ``offset``; a short read is a truncated shard."""
        bs = self.block_size
        if bs <= 0 or size > self.cache_bytes // 4:
            data = self._read_raw(url, offset, size, member)
        else:
            first, last = offset // bs, (offset + size - 1) // bs
            blocks = [self._block(url, b, member) for b in range(first, last + 1)]
            start = offset - first * bs
            data = (blocks[0] if len(blocks) == 1 else b"".join(blocks))[start:start + size]
        if len(data) != size:
            raise ShardIOError(url, member, f"truncated shard: member bytes {offset}.."
                                            f"{offset + size} but only {len(data)} read")
        return data

    def _block(self, url: str, number: int, member: str) -> bytes:
        """Block ``number`` of ``url`` (shorter at the end of the file), from the LRU."""
        self._check_pid()
        key = (url, number)
        data = self._blocks.get(key)
        if data is not None:
            self._blocks.move_to_end(key)
            return data
        data = self._read_raw(url, number * self.block_size, self.block_size, member,
                              exact=False)
        self._blocks[key] = data
        self._cached += len(data)
        while self._cached > self.cache_bytes and len(self._blocks) > 1:
            self._cached -= len(self._blocks.popitem(last=False)[1])
        return data

    def _read_raw(self, url: str, offset: int, size: int, member: str,
                  exact: bool = True) -> bytes:
        """Up to ``size`` bytes from ``offset`` (``exact``: a short read is an error)."""
        def once() -> bytes:
            if _is_url(url):
                fs, path = self._remote(url)
                data = fs.cat_file(path, start=offset, end=offset + size)
            else:  # a local file descriptor: no shared offset between workers
                data = os.pread(self._handle(url), size, offset)
            if exact and len(data) != size:
                raise ShardIOError(url, member, f"truncated shard: member bytes {offset}.."
                                                f"{offset + size} but only {len(data)} read")
            return data
        return self._retrying(url, member, once)

    def _remote(self, url: str):
        """``(filesystem, path)`` of a URL, the filesystem kept per process and protocol."""
        self._check_pid()
        protocol = url.split("://", 1)[0]
        fs = self._filesystems.get(protocol)
        if fs is None:
            fs = self._filesystems[protocol] = self._fs(url)[0]
        return fs, fs._strip_protocol(url)

    def _check_pid(self) -> None:
        """A forked DataLoader worker inherits the parent's handles, whose file offsets and
        connections it would share: it forgets them and opens its own."""
        if self._pid != os.getpid():
            self._open, self._filesystems, self._pid = OrderedDict(), {}, os.getpid()
            self._blocks, self._cached = OrderedDict(), 0

    def _handle(self, url: str, local_fd: bool = True) -> Any:
        """An open handle of ``url``: an fd for local files (``local_fd``), else a file."""
        self._check_pid()
        key = (url, local_fd)
        f = self._open.get(key)
        if f is None:
            if _is_url(url):
                fs, path = self._fs(url)
                f = fs.open(path, "rb", block_size=self.block_size, cache_type="readahead")
            elif local_fd:
                f = os.open(url.removeprefix("file://"), os.O_RDONLY)
            else:
                f = open(url.removeprefix("file://"), "rb")  # noqa: SIM115 (LRU closes it)
            self._open[key] = f
            while len(self._open) > self.max_open:
                _close(self._open.popitem(last=False)[1])
        self._open.move_to_end(key)
        return f

    def _drop(self, url: str) -> None:
        for key in [k for k in self._open if k[0] == url]:
            _close(self._open.pop(key))
        for key in [k for k in self._blocks if k[0] == url]:
            self._cached -= len(self._blocks.pop(key))
        if _is_url(url):  # a failed connection: a fresh filesystem (and session) next time
            self._filesystems.pop(url.split("://", 1)[0], None)

    def _retrying(self, url: str, member: str, read):
        waits = _RETRIES if _is_url(url) else ()
        for attempt in range(len(waits) + 1):
            try:
                return read()
            except ShardIOError:
                self._drop(url)
                raise
            except FileNotFoundError as exc:
                self._drop(url)
                raise ShardIOError(url, member, "not found") from exc
            except Exception as exc:
                self._drop(url)
                if attempt == len(waits):
                    raise ShardIOError(url, member, f"read failed after {attempt + 1} "
                                                    f"attempt(s): {exc!r}") from exc
                log.warning("reading %s failed (%r); retrying in %.1f s", url, exc,
                            waits[attempt])
                time.sleep(waits[attempt])
        raise AssertionError("unreachable")

    def members(self, url: str) -> ShardMembers:
        """The member index of shard ``url``: its ``.idx.json``, else a scan of the tar."""
        idx = _join(url.rsplit("/", 1)[0], index_name(url.rsplit("/", 1)[-1])) \
            if "/" in url else index_name(url)
        try:
            return ShardMembers.from_json(self.read_text(idx), idx)
        except ShardIOError as exc:
            if exc.reason != "not found":
                raise
        return self.scan(url)

    def scan(self, url: str) -> ShardMembers:
        """Build a member index by reading the tar's headers and its ``KEY.json`` members."""
        m = ShardMembers.empty()
        payloads: dict[str, tuple[str, int, int]] = {}
        metas: dict[str, dict] = {}
        try:
            with tarfile.open(fileobj=_Reader(self, url), mode="r:") as tar:  # type: ignore
                for info in tar:
                    if not info.isfile() or "." not in info.name.rsplit("/", 1)[-1]:
                        continue
                    key, ext = info.name.split(".", 1)
                    if ext == "json":
                        metas[key] = json.loads(tar.extractfile(info).read())
                    elif "." + ext in PAYLOAD_EXTENSIONS["audio"] + PAYLOAD_EXTENSIONS["latents"]:
                        payloads[key] = (ext, info.offset_data, info.size)
        except (tarfile.TarError, ValueError, EOFError) as exc:
            raise ShardIOError(url, "", f"not a readable tar shard ({exc})") from exc
        for key, (ext, offset, size) in payloads.items():
            meta = metas.get(key)
            if meta is None or not {"frames", "sample_rate", "channels"} <= set(meta):
                raise ShardIOError(url, f"{key}.json", "missing or without frames, "
                                   "sample_rate, channels (shards from `audio-core data pack` "
                                   "have them)")
            for col, value in (("keys", key), ("ext", ext), ("offset", offset), ("size", size),
                               ("frames", int(meta["frames"])),
                               ("sample_rate", int(meta["sample_rate"])),
                               ("channels", int(meta["channels"])),
                               ("label", int(meta.get("label", -1))),
                               ("text", str(meta.get("text", ""))),
                               ("pcm_offset", -1), ("pcm_dtype", "")):
                getattr(m, col).append(value)
        return m


def _close(handle: Any) -> None:
    with contextlib.suppress(Exception):  # a broken connection may fail to close
        if isinstance(handle, int):
            os.close(handle)
        else:
            handle.close()


class _Reader:
    """A read-only file object over a shard for :mod:`tarfile` (sequential, seekable)."""

    def __init__(self, source: ShardSource, url: str) -> None:
        self._f = source._handle(url, local_fd=False)
        self._f.seek(0)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()


@attrs.define
class ShardSet:
    """Resolved shards: their URLs and records, the content kind and dataset metadata."""

    urls: list[str]
    records: list[ShardRecord]
    content: str = "audio"
    header: dict[str, Any] = attrs.field(factory=dict)
    members: dict[int, ShardMembers] = attrs.field(factory=dict)  # scanned at resolve time

    @property
    def counts(self) -> list[int]:
        return [r.samples for r in self.records]


def resolve_shards(urls: str | Sequence[str], source: ShardSource) -> ShardSet:
    """Turn ``params.urls`` (see the module docstring) into one :class:`ShardSet`."""
    items = [urls] if isinstance(urls, str) else list(urls)
    if not items:
        raise ShardFormatError("params.urls is empty; expected a packed folder, its "
                               "index.json, a brace pattern of .tar shards, or a list")
    parts = [_resolve_one(str(u), source) for u in items]
    contents = {p.content for p in parts}
    if len(contents) > 1:
        raise ShardFormatError(f"params.urls mixes content kinds {sorted(contents)}")
    out = ShardSet([], [], parts[0].content, dict(parts[0].header))
    for p in parts:
        for i, (url, record) in enumerate(zip(p.urls, p.records, strict=True)):
            if i in p.members:
                out.members[len(out.urls)] = p.members[i]
            out.urls.append(url)
            out.records.append(record)
    return out


def _resolve_one(item: str, source: ShardSource) -> ShardSet:
    if item.endswith(".tar") or "{" in item:
        import braceexpand

        return _from_tars(list(braceexpand.braceexpand(item)), source)
    index_url = item if item.endswith(".json") else _join(item, INDEX_FILE)
    try:
        text = source.read_text(index_url)
    except ShardIOError as exc:
        raise ShardFormatError(f"cannot read shard index {index_url} ({exc.reason}); "
                               "expected a folder written by `audio-core data pack`, its "
                               "index.json, or .tar shard URLs") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ShardFormatError(f"{index_url}: not JSON ({exc})") from exc
    index = parse_index(data, index_url)
    base = index_url.rsplit("/", 1)[0] if "/" in index_url else "."
    header = {k: v for k, v in index.items() if k != "shards"}
    return ShardSet([_join(base, r.name) for r in index["shards"]], list(index["shards"]),
                    index["content"], header)


def _from_tars(urls: list[str], source: ShardSource) -> ShardSet:
    records, members = [], {}
    content = "audio"
    for i, url in enumerate(urls):
        m = source.members(url)
        members[i] = m
        if m.ext and "." + m.ext[0] in PAYLOAD_EXTENSIONS["latents"]:
            content = "latents"
        seconds = sum(f / r for f, r in zip(m.frames, m.sample_rate, strict=True))
        records.append(ShardRecord(url.rsplit("/", 1)[-1], len(m), seconds, -1, ""))
    return ShardSet(urls, records, content, {}, members)
