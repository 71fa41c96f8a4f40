"""File index: find audio files, read their headers (optionally verify samples), cache it.

The cache is one JSON file per scanned folder under ``$AUDIO_CORE_CACHE_DIR`` (default
``~/.cache/audio_core/index``); an entry is reused while the file's (path, size, mtime) is
unchanged, so re-scanning a large folder costs one ``stat`` per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import numpy as np
import soundfile as sf

from audio_core.audio.io import AudioFileError, audio_info

__all__ = [
    "AUDIO_EXTENSIONS",
    "FileEntry",
    "FolderProblem",
    "default_cache_dir",
    "find_audio_files",
    "scan_files",
    "verify_file",
    "walk_audio_files",
]

log = logging.getLogger(__name__)

#: Extensions the folder datasets pick up by default (case-insensitive).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
_CACHE_VERSION = 1
_PROGRESS_MIN_FILES = 200


@attrs.frozen
class FileEntry:
    """One indexed file. ``error`` is ``None`` for a usable file, else the reason it is bad."""

    path: str
    size: int
    mtime_ns: int
    sample_rate: int = 0
    channels: int = 0
    frames: int = 0
    format: str = ""
    error: str | None = None
    verified: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def duration(self) -> float:
        """Length in seconds (0 for a bad file)."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def to_dict(self) -> dict:
        return attrs.asdict(self)


def default_cache_dir() -> Path:
    """``$AUDIO_CORE_CACHE_DIR`` or ``~/.cache/audio_core/index``."""
    env = os.environ.get("AUDIO_CORE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "audio_core" / "index"


@attrs.frozen
class FolderProblem:
    """A folder (or link) a scan could not use: a symlink loop, a second link to a folder
    already scanned, or a folder that cannot be listed. ``reason`` says which."""

    path: str
    reason: str


def walk_audio_files(root: str | os.PathLike, extensions: Iterable[str] = AUDIO_EXTENSIONS
                     ) -> tuple[list[Path], list[FolderProblem]]:
    """Audio files under ``root`` (recursive, sorted, hidden files and folders skipped) and
    the problems met on the way.

    Symlinked folders are followed, but every real folder is scanned once: a link back to
    one of its own ancestors (a loop) or a second link to a folder already scanned is
    skipped and reported, so no file is indexed twice. A file reached through several paths
    (symlinks, hard links) counts once, under a path that is not a symlink if it has one.
    A sub-folder that cannot be listed (permissions, I/O error) is reported, not silently
    skipped.
    """
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found: list[tuple[Path, tuple[int, int] | None, bool]] = []  # (path, identity, is link)
    problems: list[FolderProblem] = []
    seen_dirs: dict[tuple[int, int], str] = {}

    def identity(entry: os.DirEntry, dev: int) -> tuple[int, int] | None:
        if not entry.is_symlink():
            return dev, entry.inode()  # from readdir: no extra system call
        try:
            st = os.stat(entry.path)
        except OSError:  # a dangling link: scan_files reports it as a bad file
            return None
        return st.st_dev, st.st_ino

    def visit(folder: Path, ancestors: tuple[tuple[int, int], ...]) -> None:
        try:
            st = folder.stat()
        except OSError as err:
            problems.append(FolderProblem(str(folder), f"cannot open folder ({err.strerror})"))
            return
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            problems.append(FolderProblem(str(folder), f"symlink loop: points back to "
                                                       f"{seen_dirs[key]}; skipped"))
            return
        if key in seen_dirs:
            problems.append(FolderProblem(str(folder), f"same folder as {seen_dirs[key]} "
                                                       f"(scanned once); skipped"))
            return
        seen_dirs[key] = str(folder)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            problems.append(FolderProblem(str(folder), f"cannot list folder ({err.strerror}); "
                                                       f"its files were not scanned"))
            return
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir and entry.is_symlink():  # after every real folder: real paths win
                linked.append((Path(entry.path), (*ancestors, key)))
            elif is_dir:
                subdirs.append(Path(entry.path))
            elif Path(entry.name).suffix.lower() in exts:
                found.append((Path(entry.path), identity(entry, st.st_dev), entry.is_symlink()))
        for sub in subdirs:
            visit(sub, (*ancestors, key))

    linked: list[tuple[Path, tuple[tuple[int, int], ...]]] = []
    visit(Path(root), ())
    while linked:
        visit(*linked.pop(0))
    chosen: dict[object, tuple[bool, Path]] = {}
    for path, ident, is_link in found:  # one path per real file: a plain one, else the first
        key = ident if ident is not None else path
        if key not in chosen or (is_link, path) < chosen[key]:
            chosen[key] = (is_link, path)
    return sorted(path for _, path in chosen.values()), problems


def find_audio_files(root: str | os.PathLike,
                     extensions: Iterable[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """Audio files under ``root`` (see :func:`walk_audio_files`); problems are logged as
    warnings."""
    files, problems = walk_audio_files(root, extensions)
    for problem in problems:
        log.warning("%s: %s", problem.path, problem.reason)
    return files


def verify_file(path: str | os.PathLike, blocksize: int = 1 << 16) -> int:
    """Decode every sample of ``path``; return the number of frames decoded.

    Raises :class:`AudioFileError` if decoding fails, nothing decodes or a sample is NaN/Inf.
    """
    frames = 0
    try:
        for block in sf.blocks(str(path), blocksize=blocksize, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                raise AudioFileError(path, "contains NaN/Inf samples")
            frames += len(block)
    except AudioFileError:
        raise
    except Exception as err:
        raise AudioFileError(path, f"unreadable or corrupt audio while decoding ({err})") from err
    if frames == 0:
        raise AudioFileError(path, "empty audio (no frames)")
    return frames


def _scan_one(path: str, size: int, mtime_ns: int, verify: bool) -> FileEntry:
    try:
        info = audio_info(path)
        frames = verify_file(path) if verify else info.frames
    except AudioFileError as err:
        return FileEntry(path, size, mtime_ns, error=err.reason, verified=verify)
    return FileEntry(path, size, mtime_ns, info.sample_rate, info.channels, frames, info.format,
                     verified=verify)


def _cache_file(cache_dir: Path, paths: Sequence[str]) -> Path:
    common = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    digest = hashlib.sha1(common.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return cache_dir / f"{Path(common).name or 'root'}-{digest}.json"


def _read_cache(file: Path) -> dict[str, FileEntry]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if data.get("version") != _CACHE_VERSION:
            return {}
        return {e["path"]: FileEntry(**e) for e in data["entries"]}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError) as err:
        log.warning("ignoring unreadable audio index cache %s (%s)", file, err)
        return {}


def _write_cache(file: Path, entries: dict[str, FileEntry]) -> None:
    data = {"version": _CACHE_VERSION, "entries": [e.to_dict() for e in entries.values()]}
    tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, file)  # atomic: concurrent ranks never see a partial file
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        log.warning("could not write audio index cache %s (%s)", file, err)


def scan_files(paths: Iterable[str | os.PathLike], *, verify: bool = False, cache: bool = True,
               cache_dir: str | os.PathLike | None = None, progress: bool | None = None,
               num_threads: int | None = None) -> list[FileEntry]:
    """Index ``paths`` (one :class:`FileEntry` each, same order; bad files carry ``error``).

    Headers are read with soundfile; ``verify`` also decodes every sample once to find
    NaN/Inf, empty or truncated files. Results are cached (see module docstring) unless
    ``cache=False``. ``progress=None`` shows a progress bar when many files need reading
    and stderr is a terminal.
    """
    paths = [os.path.abspath(p) for p in paths]
    if not paths:
        return []
    cache_file = _cache_file(Path(cache_dir) if cache_dir else default_cache_dir(), paths)
    cached = _read_cache(cache_file) if cache else {}
    entries: dict[str, FileEntry] = {}
    todo = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as err:
            entries[path] = FileEntry(path, 0, 0, error=f"cannot stat file ({err.strerror})")
            continue
        hit = cached.get(path)
        if (hit is not None and hit.size == st.st_size and hit.mtime_ns == st.st_mtime_ns
                and (hit.verified or not verify)):
            entries[path] = hit
        else:
            todo.append((path, st.st_size, st.st_mtime_ns))
    if todo:
        entries.update(_scan_many(todo, verify, progress, num_threads))
        if cache:
            _write_cache(cache_file, {**cached, **entries})
    return [entries[p] for p in paths]


def _scan_many(todo: list[tuple[str, int, int]], verify: bool, progress: bool | None,
               num_threads: int | None) -> dict[str, FileEntry]:
    from tqdm.auto import tqdm

    threads = num_threads or min(8, os.cpu_count() or 1)
    if progress is None:  # auto: only for many files, and only on a terminal (tqdm's None)
        disable = None if len(todo) >= _PROGRESS_MIN_FILES else True
    else:
        disable = not progress
    bar = tqdm(total=len(todo), desc="Verifying audio" if verify else "Scanning audio",
               unit="file", leave=False, disable=disable)
    out = {}
    with bar, ThreadPoolExecutor(max_workers=threads) as pool:
        for entry in pool.map(lambda t: _scan_one(t[0], t[1], t[2], verify), todo):
            out[entry.path] = entry
            bar.update()
    return out
