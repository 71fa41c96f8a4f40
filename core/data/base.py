"""Shared dataset machinery: the bad-file report and fixed-length, seeded crops of files.

Item contract (a dict, default-collatable):

- ``audio``: float32 Tensor (channels, segment_samples)
- ``mask``: bool Tensor (segment_samples,), True on real audio, False on padding
- ``label``: int, -1 when the dataset has no labels
- ``path``: str, ``""`` for generated audio
- ``offset``: int, crop start in samples at the model rate
- ``length``: int, number of real samples (``mask.sum()``)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset

from audio_core import distributed
from audio_core.audio.io import AudioFileError, load_audio
from audio_core.audio.resample import resample
from audio_core.audio.transforms import pad_or_trim
from audio_core.data.index import FileEntry
from audio_core.errors import AudioCoreError

__all__ = ["AudioFileDataset", "BadFile", "BadFileReport", "DatasetError", "cut_window", "item_rng",
           "read_window"]

log = logging.getLogger("audio_core.data")

_RESAMPLE_MARGIN = 256  # extra file samples read before/after a crop for resampling context


class DatasetError(AudioCoreError, ValueError):
    """A dataset cannot be built: missing root, unknown split, no usable audio files."""


@attrs.frozen
class BadFile:
    """A skipped file and why."""

    path: str
    reason: str


class BadFileReport:
    """Files a dataset skipped (corrupt, empty, unreadable, NaN/Inf), each with its reason."""

    def __init__(self, bad: Sequence[BadFile] = ()) -> None:
        self._bad: dict[str, BadFile] = {}
        for b in bad:
            self.add(b.path, b.reason)

    def add(self, path: str, reason: str) -> bool:
        """Record ``path``; returns False if it was already recorded."""
        if path in self._bad:
            return False
        self._bad[path] = BadFile(path, reason)
        return True

    def __len__(self) -> int:
        return len(self._bad)

    def __iter__(self) -> Iterator[BadFile]:
        return iter(self._bad.values())

    def __contains__(self, path: object) -> bool:
        return str(path) in self._bad

    @property
    def paths(self) -> list[str]:
        return list(self._bad)

    def reason(self, path: str) -> str:
        return self._bad[str(path)].reason

    def to_dict(self) -> list[dict[str, str]]:
        return [attrs.asdict(b) for b in self]

    def __repr__(self) -> str:
        return f"BadFileReport({len(self)} files)"

    def log_summary(self, where: str) -> None:
        """Log one warning with the count and the first few files."""
        if not self:
            return
        first = "; ".join(f"{b.path}: {b.reason}" for b in list(self)[:3])
        more = f" (and {len(self) - 3} more)" if len(self) > 3 else ""
        log.warning("skipping %d bad audio file(s) in %s; see dataset.bad_files: %s%s",
                    len(self), where, first, more)


def item_rng(seed: int, rank: int, epoch: int, index: int) -> np.random.Generator:
    """A generator fixed by (seed, rank, epoch, index): crops independent of worker count."""
    return np.random.default_rng([seed & 0xFFFFFFFF, rank, epoch, index])


class EpochRankMixin:
    """``seed``/``epoch``/``rank`` state shared by the datasets; rank is detected lazily."""

    seed: int = 0
    epoch: int = 0
    _rank: int | None = None

    @property
    def rank(self) -> int:
        if self._rank is None:
            self._rank = distributed.rank()
        return self._rank

    def set_epoch(self, epoch: int) -> None:
        """Select the crops of ``epoch`` (the loader calls this at the start of each epoch)."""
        self.epoch = int(epoch)

    def set_rank(self, rank: int) -> None:
        """Salt the crops with ``rank`` so ranks draw different crops."""
        self._rank = int(rank)


class AudioFileDataset(EpochRankMixin, Dataset):
    """Fixed-length crops of indexed audio files, resampled to ``sample_rate``.

    ``files`` are usable :class:`FileEntry` records, ``labels`` one int per file (or None).
    Each item is a crop of ``segment_seconds`` at ``sample_rate`` Hz starting at a random
    offset drawn from (seed, rank, epoch, index), or at 0 with ``random_crop=False``;
    shorter files are zero-padded and masked. ``segment_seconds=None`` yields whole files
    (batch them with :func:`audio_core.data.loader.collate`). ``channels=None`` keeps each
    file's channel count. A file failing at load time is recorded in ``bad_files`` and the
    next index is used instead (deterministically).
    """

    def __init__(self, files: Sequence[FileEntry], *, sample_rate: int, channels: int | None,
                 segment_seconds: float | None, seed: int = 0,
                 labels: Sequence[int] | None = None, random_crop: bool = True,
                 bad_files: BadFileReport | None = None) -> None:
        if int(sample_rate) <= 0:
            raise DatasetError(f"sample_rate must be a positive integer, got {sample_rate!r}")
        if segment_seconds is not None and segment_seconds <= 0:
            raise DatasetError(f"segment_seconds must be positive, got {segment_seconds!r}")
        if labels is not None and len(labels) != len(files):
            raise DatasetError(f"got {len(labels)} labels for {len(files)} files")
        self.files = list(files)
        self.labels = list(labels) if labels is not None else None
        self.sample_rate, self.channels, self.seed = int(sample_rate), channels, int(seed)
        self.segment_seconds = segment_seconds
        self.segment_samples = (None if segment_seconds is None
                                else round(segment_seconds * self.sample_rate))
        self.random_crop = random_crop
        self.bad_files = bad_files if bad_files is not None else BadFileReport()
        self._failed: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    @property
    def units_per_item(self) -> tuple[str, float]:
        """Throughput unit: seconds of audio per crop (whole files: items)."""
        if self.segment_samples is None:
            return "items", 1.0
        return "audio_s", self.segment_samples / self.sample_rate

    def __getitem__(self, index: int) -> dict:
        n = len(self.files)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} files")
        index %= n
        for k in range(n):  # deterministic fallback: the next file that loads
            i = (index + k) % n
            if i in self._failed:
                continue
            try:  # a fresh generator per try: the crop never depends on earlier failures
                return self._item(i, item_rng(self.seed, self.rank, self.epoch, index))
            except AudioFileError as err:
                self._failed.add(i)
                if self.bad_files.add(err.path, err.reason):
                    log.warning("skipping bad audio file at load time: %s", err)
        raise DatasetError(f"every one of the {n} files failed to load; see dataset.bad_files")

    def _item(self, i: int, rng: np.random.Generator) -> dict:
        entry = self.files[i]
        label = self.labels[i] if self.labels is not None else -1
        seg = self.segment_samples
        start, frames = self._span(i)
        if seg is None:
            audio, _ = load_audio(entry.path, sample_rate=self.sample_rate,
                                  channels=self.channels, offset=start, frames=frames)
            n = audio.shape[-1]
            return _make_item(audio, torch.ones(n, dtype=torch.bool), label, entry.path, 0, n,
                              self.sample_rate, entry.frames / entry.sample_rate)
        total = math.floor(entry.frames * self.sample_rate / entry.sample_rate)
        offset = int(rng.integers(0, total - seg + 1)) if self.random_crop and total > seg else 0
        audio = self._read(entry, offset, seg, start)
        audio, mask = pad_or_trim(audio, seg)
        return _make_item(audio, mask, label, entry.path, offset, int(mask.sum()),
                          self.sample_rate, entry.frames / entry.sample_rate)

    def _span(self, i: int) -> tuple[int, int]:
        """File frames of item ``i``: (first frame, count or -1 for the rest of the file).
        A dataset whose entries are regions of files (a manifest's ``offset``) overrides it;
        ``files[i].frames`` is then the region's length."""
        return 0, -1

    def _read(self, entry: FileEntry, offset: int, seg: int, start: int = 0) -> torch.Tensor:
        """(channels, <= seg) samples at the model rate starting at model sample ``offset``
        of the entry, which begins at file frame ``start`` (see :func:`read_window`)."""
        sr, fsr = self.sample_rate, entry.sample_rate
        lo, hi = read_window(offset, seg, fsr, sr, entry.frames)
        try:
            audio, _ = load_audio(entry.path, channels=self.channels, offset=start + lo,
                                  frames=hi - lo)
        except AudioFileError as err:
            if "no frames" in err.reason:
                raise AudioFileError(entry.path, f"truncated: header reports {entry.frames} "
                                                 f"frames but none read at frame {lo}") from err
            raise
        return cut_window(audio, lo, offset, seg, fsr, sr)


def read_window(offset: int, seg: int, file_rate: int, model_rate: int,
                file_frames: int) -> tuple[int, int]:
    """File samples ``[lo, hi)`` to read for ``seg`` model-rate samples from ``offset``.

    When resampling, the read starts at a file sample whose time is on the model-rate grid
    (a multiple of ``file_rate / gcd``) and ``_RESAMPLE_MARGIN`` earlier, so the crop matches
    resampling the whole file, without edge effects.
    """
    if file_rate == model_rate:
        return offset, min(file_frames, offset + seg)
    step = file_rate // math.gcd(model_rate, file_rate)
    lo = max(0, (offset * file_rate // model_rate - _RESAMPLE_MARGIN) // step * step)
    hi = min(file_frames, -(-(offset + seg) * file_rate // model_rate) + _RESAMPLE_MARGIN)
    return lo, hi


def cut_window(audio: torch.Tensor, lo: int, offset: int, seg: int, file_rate: int,
               model_rate: int) -> torch.Tensor:
    """The crop ``(channels, <= seg)`` at the model rate from the window read at ``lo``."""
    if file_rate == model_rate:
        return audio
    cut = offset - lo * model_rate // file_rate  # exact: lo is on the model-rate grid
    return resample(audio, file_rate, model_rate)[:, cut:cut + seg]


def _make_item(audio: torch.Tensor, mask: torch.Tensor, label: int, path: str, offset: int,
               length: int, sample_rate: int, seconds_total: float) -> dict:
    """An item; ``seconds_start`` (the crop's offset) and ``seconds_total`` (the file's, or
    the manifest region's, duration) are in seconds, for timing conditioners."""
    return {"audio": audio.to(torch.float32).contiguous(), "mask": mask.to(torch.bool),
            "label": int(label), "path": str(path), "offset": int(offset), "length": int(length),
            "seconds_start": offset / sample_rate, "seconds_total": float(seconds_total)}
