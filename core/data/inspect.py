"""``audio-core data inspect PATH``: what is in a folder (or file) of audio, and what is bad."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import attrs

from audio_core.data.base import BadFile, DatasetError
from audio_core.data.index import AUDIO_EXTENSIONS, FileEntry, scan_files, walk_audio_files

__all__ = ["InspectReport", "inspect_path"]


@attrs.frozen
class InspectReport:
    """Usable ``files`` and ``bad_files`` found under ``root``, with totals."""

    root: str
    files: list[FileEntry]
    bad_files: list[BadFile]
    verified: bool

    @property
    def total_seconds(self) -> float:
        return sum(f.duration for f in self.files)

    @property
    def hours(self) -> float:
        return self.total_seconds / 3600

    @property
    def sample_rates(self) -> dict[int, int]:
        """Sample rate -> number of files."""
        return dict(sorted(Counter(f.sample_rate for f in self.files).items()))

    @property
    def channels(self) -> dict[int, int]:
        """Channel count -> number of files."""
        return dict(sorted(Counter(f.channels for f in self.files).items()))

    @property
    def formats(self) -> dict[str, int]:
        return dict(sorted(Counter(f.format for f in self.files).items()))

    def to_dict(self) -> dict:
        """JSON-ready summary, per-file details and bad files."""
        return {
            "root": self.root,
            "verified": self.verified,
            "totals": {"files": len(self.files), "bad_files": len(self.bad_files),
                       "seconds": self.total_seconds, "hours": self.hours,
                       "sample_rates": {str(k): v for k, v in self.sample_rates.items()},
                       "channels": {str(k): v for k, v in self.channels.items()},
                       "formats": self.formats},
            "files": [{"path": f.path, "duration": f.duration, "sample_rate": f.sample_rate,
                       "channels": f.channels, "frames": f.frames, "format": f.format}
                      for f in self.files],
            "bad_files": [attrs.asdict(b) for b in self.bad_files],
        }

    def summary(self) -> str:
        """A few human-readable lines."""
        rates = ", ".join(f"{k} Hz: {v}" for k, v in self.sample_rates.items()) or "-"
        chans = ", ".join(f"{k} ch: {v}" for k, v in self.channels.items()) or "-"
        lines = [f"{self.root}: {len(self.files)} audio files, {self.hours:.3f} h "
                 f"({self.total_seconds:.1f} s), {len(self.bad_files)} bad",
                 f"  sample rates: {rates}", f"  channels: {chans}"]
        lines += [f"  bad: {b.path}: {b.reason}" for b in self.bad_files]
        return "\n".join(lines)


def inspect_path(path: str | os.PathLike, *, verify: bool = True,
                 extensions: Sequence[str] = AUDIO_EXTENSIONS, cache: bool = True,
                 progress: bool | None = None) -> InspectReport:
    """Index the audio files under ``path`` (or the single file ``path``) into a report.

    ``verify`` decodes every file once to find NaN/Inf, empty and truncated files; results
    are cached like a dataset scan, so inspecting again is cheap. Folders that cannot be
    listed, symlink loops and second links to a folder are listed among ``bad_files``.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"cannot inspect '{root}': no such file or folder")
    if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
        raise DatasetError(f"cannot inspect '{root}': permission denied (the folder cannot "
                           f"be listed)")
    paths, problems = ([root], []) if root.is_file() else walk_audio_files(root, extensions)
    entries = scan_files(paths, verify=verify, cache=cache, progress=progress)
    return InspectReport(
        root=str(root),
        files=[e for e in entries if e.ok],
        bad_files=[BadFile(p.path, p.reason) for p in problems]
        + [BadFile(e.path, e.error or "unreadable") for e in entries if not e.ok],
        verified=verify,
    )
