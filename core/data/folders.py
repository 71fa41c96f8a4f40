"""Datasets over folders of audio files: plain, class-labelled and train/val/test splits.

All three index their files with :mod:`audio_core.data.index` (cached), skip bad files into
``dataset.bad_files`` and yield the items described in :mod:`audio_core.data.base`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from audio_core.data.base import AudioFileDataset, BadFileReport, DatasetError
from audio_core.data.index import AUDIO_EXTENSIONS, FolderProblem, scan_files, walk_audio_files

__all__ = ["ClassFolderDataset", "FolderDataset", "SplitFolderDataset"]

log = logging.getLogger("audio_core.data")


def _check_dir(root: str | os.PathLike, what: str) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"{what} '{path}' does not exist")
    if not path.is_dir():
        raise DatasetError(f"{what} '{path}' is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DatasetError(f"{what} '{path}': permission denied (the folder cannot be listed)")
    return path


def _subdirs(path: Path) -> list[str]:
    try:
        return sorted(p.name for p in path.iterdir()
                      if p.is_dir() and not p.name.startswith("."))
    except OSError as err:
        raise DatasetError(f"cannot list folder '{path}' ({err.strerror})") from err


class _IndexedFolder(AudioFileDataset):
    """Index ``paths`` (with one label each, or None), drop bad and too-short files."""

    def _index(self, paths: list[Path], labels: list[int] | None, where: Path, *,
               extensions: Sequence[str], verify: bool, min_seconds: float, cache: bool,
               expected: str, problems: Sequence[FolderProblem] = (), **crop) -> None:
        if not paths:
            seen = "; ".join(f"{p.path}: {p.reason}" for p in problems[:3])
            raise DatasetError(f"no audio files ({', '.join(extensions)}) found under "
                               f"'{where}'; expected {expected}"
                               f"{f' (folder problems: {seen})' if seen else ''}")
        entries = scan_files(paths, verify=verify, cache=cache)
        bad = BadFileReport()
        for problem in problems:  # symlink loops, unreadable folders: in the report too
            bad.add(problem.path, problem.reason)
        keep = []
        channels = crop.get("channels")
        for i, e in enumerate(entries):
            if e.error is not None:
                bad.add(e.path, e.error)
            elif channels not in (None, 1, e.channels) and e.channels != 1:
                bad.add(e.path, f"has {e.channels} channels; cannot convert to {channels} "
                                "(only mixing down to mono or repeating mono)")
            elif e.duration >= min_seconds:
                keep.append(i)
        bad.log_summary(str(where))
        short = len(entries) - (len(bad) - len(problems)) - len(keep)
        if short:
            log.info("dropped %d file(s) shorter than %.3g s under %s", short, min_seconds, where)
        if not keep:
            raise DatasetError(f"no usable audio files under '{where}': {len(entries)} found, "
                               f"{len(bad) - len(problems)} bad, the rest shorter than "
                               f"min_seconds={min_seconds} (bad files: {bad.to_dict()[:5]})")
        super().__init__([entries[i] for i in keep],
                         labels=None if labels is None else [labels[i] for i in keep],
                         bad_files=bad, **crop)
        self.root = str(where)


class FolderDataset(_IndexedFolder):
    """Every audio file under ``root`` (recursive), unlabelled (``label`` is -1).

    ``verify=True`` (default) decodes each file once at indexing time (cached by path, size
    and mtime) so NaN/Inf and truncated files are reported up front, also with DataLoader
    workers; ``verify=False`` reads headers only and skips such files when a crop hits them.
    Files shorter than ``min_seconds`` are left out. See :class:`AudioFileDataset` for
    ``random_crop`` and the item contract.
    """

    def __init__(self, root: str | os.PathLike, *, extensions: Sequence[str] = AUDIO_EXTENSIONS,
                 verify: bool = True, min_seconds: float = 0.0, random_crop: bool = True,
                 cache: bool = True, sample_rate: int, channels: int | None = 1,
                 segment_seconds: float | None = 1.0, seed: int = 0) -> None:
        path = _check_dir(root, "dataset root")
        files, problems = walk_audio_files(path, extensions)
        self._index(files, None, path, extensions=extensions, problems=problems,
                    verify=verify, min_seconds=min_seconds, cache=cache,
                    expected="audio files in it or its sub-folders", sample_rate=sample_rate,
                    channels=channels, segment_seconds=segment_seconds, seed=seed,
                    random_crop=random_crop)


class ClassFolderDataset(_IndexedFolder):
    """ImageNet-style ``root/<class>/**/*.wav``; ``label`` indexes the sorted ``classes``.

    ``classes`` lists every non-hidden sub-folder of ``root`` (sorted) and
    ``class_to_index`` maps name to label. Options as in :class:`FolderDataset`.
    """

    def __init__(self, root: str | os.PathLike, *, classes: Sequence[str] | None = None,
                 extensions: Sequence[str] = AUDIO_EXTENSIONS, verify: bool = True,
                 min_seconds: float = 0.0, random_crop: bool = True, cache: bool = True,
                 sample_rate: int, channels: int | None = 1,
                 segment_seconds: float | None = 1.0, seed: int = 0) -> None:
        path = _check_dir(root, "class-folder dataset root")
        found = _subdirs(path)
        if not found:
            raise DatasetError(f"class-folder dataset root '{path}' has no sub-folders; "
                               "expected ROOT/<class>/<file>.wav")
        self.classes = list(classes) if classes is not None else found
        self.class_to_index = {c: i for i, c in enumerate(self.classes)}
        files, labels, problems = _class_files(path, self.classes, extensions)
        self._index(files, labels, path, extensions=extensions, problems=problems, verify=verify,
                    min_seconds=min_seconds, cache=cache, expected="ROOT/<class>/<file>.wav",
                    sample_rate=sample_rate, channels=channels, segment_seconds=segment_seconds,
                    seed=seed, random_crop=random_crop)


def _class_files(root: Path, classes: Sequence[str], extensions: Sequence[str]
                 ) -> tuple[list[Path], list[int], list[FolderProblem]]:
    files, labels, problems = [], [], []
    for label, name in enumerate(classes):
        found, trouble = (walk_audio_files(root / name, extensions) if (root / name).is_dir()
                          else ([], []))
        if not found:
            log.warning("class '%s' has no audio files under %s", name, root / name)
        files += found
        labels += [label] * len(found)
        problems += trouble
    return files, labels, problems


class SplitFolderDataset(_IndexedFolder):
    """One split of ``root/{train,val,test}/...``.

    With class sub-folders (``root/<split>/<class>/x.wav``) items are labelled by the
    sorted union of class names over all splits, so labels agree between splits;
    ``class_folders=None`` detects this (sub-folders and no audio directly in the split).
    ``random_crop`` defaults to True for ``train`` and False (crop from the start) otherwise.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 class_folders: bool | None = None, extensions: Sequence[str] = AUDIO_EXTENSIONS,
                 verify: bool = True, min_seconds: float = 0.0,
                 random_crop: bool | None = None, cache: bool = True, sample_rate: int,
                 channels: int | None = 1, segment_seconds: float | None = 1.0,
                 seed: int = 0) -> None:
        path = _check_dir(root, "split-folder dataset root")
        splits = _subdirs(path)
        if split not in splits:
            raise DatasetError(f"split '{split}' not found in '{path}'; splits found: "
                               f"{', '.join(splits) or '(none)'}")
        split_dir = path / split
        if class_folders is None:
            exts = {e.lower() for e in extensions}
            top = [p for p in split_dir.iterdir() if p.suffix.lower() in exts]
            class_folders = bool(_subdirs(split_dir)) and not top
        self.split = split
        if class_folders:
            self.classes = sorted({c for s in splits for c in _subdirs(path / s)})
            self.class_to_index = {c: i for i, c in enumerate(self.classes)}
            files, labels, problems = _class_files(split_dir, self.classes, extensions)
        else:
            self.classes, self.class_to_index = [], {}
            (files, problems), labels = walk_audio_files(split_dir, extensions), None
        self._index(files, labels, split_dir, extensions=extensions, problems=problems,
                    verify=verify,
                    min_seconds=min_seconds, cache=cache,
                    expected=f"ROOT/{split}/<file>.wav or ROOT/{split}/<class>/<file>.wav",
                    sample_rate=sample_rate, channels=channels, segment_seconds=segment_seconds,
                    seed=seed, random_crop=split == "train" if random_crop is None
                    else random_crop)
