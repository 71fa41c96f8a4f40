"""MUSDB18 and MUSDB18-HQ music (``core.musdb``): mixtures or chosen stems, in crops.

Layouts (the ``musdb`` package's), under ``root``:

- MUSDB18: ``{train,test}/<Artist - Title>.stem.mp4``, five AAC streams in the order
  mixture, drums, bass, other, vocals (read with PyAV: ``pip install av``);
- MUSDB18-HQ: ``{train,test}/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav``.

``format="auto"`` uses the wav folders when a split has them, else the stem files.
``split``: ``train`` (the ``train`` folder minus ``valid_tracks``), ``valid`` (only those;
by default the 14 tracks musdb uses for validation) or ``test`` (the ``test`` folder).
``stems``: what an item holds: ``["mixture"]`` (default), or stems from ``drums``,
``bass``, ``other``, ``vocals`` and ``accompaniment`` (drums + bass + other), summed
(``mix="sum"``) or one of them per item (``mix="random"``, drawn from the item's seed).

Items are crops of ``chunk_duration`` seconds (default ``data.segment_seconds``);
``samples_per_epoch`` items per epoch (default: one per track), item ``i`` from track ``i %
tracks`` at an offset drawn from (seed, rank, epoch, i), or, with ``random_crop=False``
(the default outside ``train``), at consecutive chunks. ``segment_seconds=None`` (e.g.
``audio-core latents``) yields whole tracks. Audio is resampled to ``sample_rate`` and
mixed to ``channels``; items follow :mod:`audio_core.data.base` plus ``track`` (the name).
Unreadable tracks are reported in ``bad_files`` and skipped.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import numpy as np
import torch
from torch.utils.data import Dataset

from audio_core.audio.io import AudioFileError, audio_info, load_audio
from audio_core.audio.resample import resample
from audio_core.audio.stems import read_stems, stem_info
from audio_core.audio.transforms import pad_or_trim, to_channels
from audio_core.data.base import BadFileReport, DatasetError, EpochRankMixin, item_rng
from audio_core.errors import format_choices

__all__ = ["STEMS", "VALIDATION_TRACKS", "MusdbDataset", "MusdbTrack"]

log = logging.getLogger("audio_core.data")

#: Stream order of a MUSDB18 ``.stem.mp4`` file (also the HQ wav names).
STEMS = ("mixture", "drums", "bass", "other", "vocals")
#: Stem names an item may ask for: the files, plus ``accompaniment``.
CHOICES = (*STEMS, "accompaniment")
ACCOMPANIMENT = ("drums", "bass", "other")
SPLITS = ("train", "valid", "test")
FORMATS = ("auto", "stems", "wav")
MIXES = ("sum", "random")
#: The tracks of the ``train`` folder that musdb holds out for validation.
VALIDATION_TRACKS = (
    "Actions - One Minute Smile", "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies", "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint", "Alexander Ross - Goodbye Bolero", "Fergessen - Nos Palpitants",
    "Leaf - Summerghost", "Skelpolu - Human Mistakes", "Young Griffo - Pennies",
    "ANiMAL - Rockshow", "James May - On The Line", "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)
_RESAMPLE_MARGIN = 256
_STEM_SUFFIX = ".stem.mp4"


@attrs.frozen
class MusdbTrack:
    """One track: its name, file (stem file or folder), rate and length in samples."""

    name: str
    path: str
    sample_rate: int
    frames: int
    stem_file: bool


def _choice(value: str, choices: Sequence[str], key: str) -> str:
    if value not in choices:
        raise DatasetError(f"core.musdb: {key} must be one of {format_choices(choices)}, got "
                           f"'{value}'")
    return value


def find_tracks(folder: Path, fmt: str) -> tuple[list[tuple[str, Path, bool]], str]:
    """``(name, path, is_stem_file)`` of every track in ``folder`` and the format used."""
    wav = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "mixture.wav").is_file())
    stems = sorted(p for p in folder.iterdir() if p.name.endswith(_STEM_SUFFIX))
    if fmt == "auto":
        fmt = "wav" if wav else "stems"
    if fmt == "wav":
        return [(p.name, p, False) for p in wav], fmt
    return [(p.name[:-len(_STEM_SUFFIX)], p, True) for p in stems], fmt


class MusdbDataset(EpochRankMixin, Dataset):
    """See the module docstring."""

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 stems: Sequence[str] = ("mixture",), mix: str = "sum",
                 chunk_duration: float | None = None, samples_per_epoch: int | None = None,
                 random_crop: bool | None = None,
                 valid_tracks: Sequence[str] = VALIDATION_TRACKS, format: str = "auto",
                 sample_rate: int, channels: int = 2, segment_seconds: float | None = 1.0,
                 seed: int = 0) -> None:
        self.split = _choice(split, SPLITS, "split")
        self.mix = _choice(mix, MIXES, "mix")
        _choice(format, FORMATS, "format")
        if not stems:
            raise DatasetError("core.musdb: stems must name at least one of "
                               f"{format_choices(CHOICES)}")
        for stem in stems:
            _choice(stem, CHOICES, "stems[]")
        self.stems = list(stems)
        seconds = chunk_duration if chunk_duration is not None else segment_seconds
        if seconds is not None and seconds <= 0:
            raise DatasetError(f"core.musdb: chunk_duration must be > 0, got {seconds}")
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise DatasetError(f"core.musdb: samples_per_epoch must be >= 1, got "
                               f"{samples_per_epoch}")
        self.sample_rate, self.channels, self.seed = int(sample_rate), int(channels), int(seed)
        self.segment_samples = None if seconds is None else round(seconds * self.sample_rate)
        self.random_crop = split == "train" if random_crop is None else bool(random_crop)
        self.bad_files = BadFileReport()
        self.tracks, self.format = self._index(Path(root).expanduser(), set(valid_tracks),
                                               format)
        self.samples_per_epoch = samples_per_epoch
        self._failed: set[int] = set()

    # -- indexing -----------------------------------------------------------------------
    def _index(self, root: Path, valid: set[str], fmt: str) -> tuple[list[MusdbTrack], str]:
        folder = root / ("test" if self.split == "test" else "train")
        if not folder.is_dir():
            raise DatasetError(f"core.musdb: '{folder}' is not a folder; expected ROOT/train "
                               f"and ROOT/test with <track>.stem.mp4 files (MUSDB18) or "
                               f"<track>/mixture.wav folders (MUSDB18-HQ)")
        found, self.format = find_tracks(folder, fmt)
        if self.split != "test":
            keep = (lambda n: n in valid) if self.split == "valid" else (lambda n: n not in valid)
            found = [t for t in found if keep(t[0])]
        tracks = []
        for name, path, stem_file in found:
            try:
                tracks.append(self._describe(name, path, stem_file))
            except AudioFileError as err:
                self.bad_files.add(err.path, err.reason)
        self.bad_files.log_summary(str(folder))
        if not tracks:
            raise DatasetError(f"core.musdb: no usable {self.split} tracks ({self.format} "
                               f"format) under '{folder}' ({len(found)} found, "
                               f"{len(self.bad_files)} bad: {self.bad_files.to_dict()[:3]})")
        return tracks, self.format

    def _describe(self, name: str, path: Path, stem_file: bool) -> MusdbTrack:
        if stem_file:
            info = stem_info(path)
            if info.streams < len(STEMS):
                raise AudioFileError(path, f"has {info.streams} audio streams; a MUSDB18 stem "
                                           f"file has {len(STEMS)} ({', '.join(STEMS)})")
            return MusdbTrack(name, str(path), info.sample_rate, info.frames, True)
        infos = []
        for stem in self._files_needed():
            file = path / f"{stem}.wav"
            if not file.is_file():
                raise AudioFileError(file, f"missing stem '{stem}' of track '{name}'")
            infos.append(audio_info(file))
        return MusdbTrack(name, str(path), infos[0].sample_rate,
                          min(i.frames for i in infos), False)

    def _files_needed(self) -> list[str]:
        names: list[str] = []
        for stem in self.stems:
            for part in ACCOMPANIMENT if stem == "accompaniment" else (stem,):
                if part not in names:
                    names.append(part)
        return names

    # -- items --------------------------------------------------------------------------
    def __len__(self) -> int:
        if self.segment_samples is None or self.samples_per_epoch is None:
            return len(self.tracks)
        return int(self.samples_per_epoch)

    @property
    def units_per_item(self) -> tuple[str, float]:
        if self.segment_samples is None:
            return "items", 1.0
        return "audio_s", self.segment_samples / self.sample_rate

    def __getitem__(self, index: int) -> dict:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        tracks = len(self.tracks)
        for k in range(tracks):  # deterministic fallback: the next track that loads
            t = (index + k) % tracks
            if t in self._failed:
                continue
            try:
                return self._item(t, index, item_rng(self.seed, self.rank, self.epoch, index))
            except AudioFileError as err:
                self._failed.add(t)
                if self.bad_files.add(err.path, err.reason):
                    log.warning("skipping bad MUSDB track at load time: %s", err)
        raise DatasetError(f"every one of the {tracks} tracks failed to load; see "
                           f"dataset.bad_files")

    def _item(self, t: int, index: int, rng: np.random.Generator) -> dict:
        track = self.tracks[t]
        parts = self.stems if self.mix == "sum" else [self.stems[int(rng.integers(
            len(self.stems)))]]
        total = math.floor(track.frames * self.sample_rate / track.sample_rate)
        seg = self.segment_samples
        if seg is None:
            offset, want = 0, total
        elif self.random_crop:
            offset, want = (int(rng.integers(0, total - seg + 1)) if total > seg else 0), seg
        else:
            chunk = index // len(self.tracks)
            offset, want = (chunk * seg) % max(total - seg + 1, 1), seg
        audio = read_span(lambda lo, hi: self._read(track, parts, lo, hi), track.frames,
                          track.sample_rate, self.sample_rate, offset, want)
        audio = to_channels(audio, self.channels)
        audio, mask = pad_or_trim(audio, want)
        return {"audio": audio.to(torch.float32).contiguous(), "mask": mask.to(torch.bool),
                "label": -1, "path": track.path, "offset": int(offset),
                "length": int(mask.sum()), "track": track.name,
                "seconds_start": offset / self.sample_rate,
                "seconds_total": track.frames / track.sample_rate}

    def _read(self, track: MusdbTrack, parts: Sequence[str], lo: int, hi: int) -> torch.Tensor:
        """The sum of ``parts`` over file samples ``[lo, hi)``: ``(channels, n)``."""
        names = [p for part in parts
                 for p in (ACCOMPANIMENT if part == "accompaniment" else (part,))]
        if track.stem_file:
            stacked = read_stems(track.path, [STEMS.index(n) for n in names], lo, hi - lo)
            return torch.from_numpy(stacked.sum(axis=0))
        audio = None
        for name in names:
            part, _ = load_audio(Path(track.path) / f"{name}.wav", offset=lo, frames=hi - lo)
            audio = part if audio is None else audio[..., :part.shape[-1]] + \
                part[..., :audio.shape[-1]]
        if audio is None:
            raise ValueError("no stem names to mix")
        return audio


def read_span(read: Callable[[int, int], torch.Tensor], frames: int, file_rate: int,
              rate: int, offset: int, length: int) -> torch.Tensor:
    """``length`` samples at ``rate`` from sample ``offset`` (at ``rate``) of a signal of
    ``frames`` samples at ``file_rate``, through ``read(lo, hi)`` (file samples ``[lo,
    hi)``). When resampling, the read starts on the rate grid and ``_RESAMPLE_MARGIN``
    earlier, so a crop equals the same span of the whole resampled signal."""
    if file_rate == rate:
        return read(offset, min(frames, offset + length))
    step = file_rate // math.gcd(rate, file_rate)
    lo = max(0, (offset * file_rate // rate - _RESAMPLE_MARGIN) // step * step)
    hi = min(frames, -(-(offset + length) * file_rate // rate) + _RESAMPLE_MARGIN)
    cut = offset - lo * rate // file_rate
    return resample(read(lo, hi), file_rate, rate)[:, cut:cut + length]
