"""Speech corpora: LibriSpeech and Mozilla Common Voice, with transcripts and speakers.

Both build on :class:`~audio_core.data.base.AudioFileDataset` (crops, masks, bad-file
report) through the folder datasets' indexing, and add to each item:

- ``text``: the transcript (``""`` when none is listed)
- ``speaker``: the speaker id as a string (LibriSpeech reader id, Common Voice client_id)
- ``label``: index of ``speaker`` in the sorted ``dataset.speakers``
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from audio_core.data.base import DatasetError
from audio_core.data.folders import _check_dir, _IndexedFolder, _subdirs
from audio_core.data.index import find_audio_files

__all__ = ["CommonVoiceDataset", "LibriSpeechDataset", "Utterance"]

log = logging.getLogger("audio_core.data")


@attrs.frozen
class Utterance:
    """One listed utterance: its audio file, transcript and speaker."""

    path: str
    text: str
    speaker: str


class _SpeechDataset(_IndexedFolder):
    """Index ``utterances`` (one per path); items gain ``text``, ``speaker`` and a speaker
    ``label``."""

    def _index_utterances(self, utterances: list[Utterance], where: Path, *, expected: str,
                          **options) -> None:
        by_path = {os.path.abspath(u.path): u for u in utterances}
        self._index([Path(u.path) for u in utterances], None, where, expected=expected,
                    **options)
        self.utterances = [by_path[e.path] for e in self.files]
        self.speakers = sorted({u.speaker for u in self.utterances})
        index = {s: i for i, s in enumerate(self.speakers)}
        self.labels = [index[u.speaker] for u in self.utterances]

    def _item(self, i: int, rng) -> dict:
        item = super()._item(i, rng)
        item["text"] = self.utterances[i].text
        item["speaker"] = self.utterances[i].speaker
        return item


def _dedupe(utterances: list[Utterance]) -> list[Utterance]:
    seen: set[str] = set()
    out = []
    for u in utterances:
        key = os.path.abspath(u.path)
        if key not in seen:
            seen.add(key)
            out.append(u)
    return out


# -- LibriSpeech ------------------------------------------------------------------------------
def _librispeech_subsets(root: Path) -> tuple[Path, list[str]]:
    """The folder holding the subsets and their names. ``root`` may be the corpus folder
    (``LibriSpeech/``), its parent, or one subset (``LibriSpeech/dev-clean``)."""
    if (root / "LibriSpeech").is_dir():
        root = root / "LibriSpeech"
    if next(root.glob("*/*/*.trans.txt"), None) is not None:
        return root.parent, [root.name]  # root is one subset: speaker/chapter below it
    return root, [s for s in _subdirs(root)
                  if next((root / s).glob("*/*/*.trans.txt"), None) is not None]


def _read_transcripts(chapter: Path) -> dict[str, str]:
    """``{utterance id: text}`` from ``<speaker>-<chapter>.trans.txt`` files in ``chapter``."""
    texts = {}
    for file in sorted(chapter.glob("*.trans.txt")):
        for line in file.read_text(encoding="utf-8").splitlines():
            utt, _, text = line.strip().partition(" ")
            if utt:
                texts[utt] = text.strip()
    return texts


class LibriSpeechDataset(_SpeechDataset):
    """LibriSpeech: ``root/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``
    with ``<speaker>-<chapter>.trans.txt`` transcripts beside the audio.

    ``root`` is the ``LibriSpeech`` folder (or its parent, or a single subset folder);
    ``subsets`` selects e.g. ``[train-clean-100, train-clean-360]`` (default: every subset
    found). An audio file without a transcript line gets ``text == ""`` (logged). Other
    options as in :class:`~audio_core.data.folders.FolderDataset`.
    """

    def __init__(self, root: str | os.PathLike, subsets: Sequence[str] | None = None, *,
                 extensions: Sequence[str] = (".flac", ".wav"), verify: bool = True,
                 min_seconds: float = 0.0, random_crop: bool = True, cache: bool = True,
                 sample_rate: int, channels: int | None = 1,
                 segment_seconds: float | None = 1.0, seed: int = 0) -> None:
        path = _check_dir(root, "LibriSpeech root")
        base, found = _librispeech_subsets(path)
        if isinstance(subsets, str):
            subsets = [subsets]
        chosen = list(subsets) if subsets is not None else found
        missing = [s for s in chosen if s not in found]
        if missing or not chosen:
            raise DatasetError(f"LibriSpeech subset(s) {missing or chosen} not found under "
                               f"'{base}'; subsets found: {', '.join(found) or '(none)'} "
                               "(expected ROOT/<subset>/<speaker>/<chapter>/*.flac + "
                               "*.trans.txt)")
        self.subsets = chosen
        utterances, untranscribed = [], 0
        chapters: dict[Path, dict[str, str]] = {}
        for subset in chosen:
            for file in find_audio_files(base / subset, extensions):
                if file.parent not in chapters:
                    chapters[file.parent] = _read_transcripts(file.parent)
                text = chapters[file.parent].get(file.stem)
                untranscribed += text is None
                utterances.append(Utterance(str(file), text or "", file.parent.parent.name))
        if untranscribed:
            log.warning("%d LibriSpeech file(s) under %s have no transcript line", untranscribed,
                        base)
        self._index_utterances(
            utterances, base, expected="ROOT/<subset>/<speaker>/<chapter>/*.flac",
            extensions=extensions, verify=verify, min_seconds=min_seconds, cache=cache,
            sample_rate=sample_rate, channels=channels, segment_seconds=segment_seconds,
            seed=seed, random_crop=random_crop)


# -- Common Voice -----------------------------------------------------------------------------
class CommonVoiceDataset(_SpeechDataset):
    """Mozilla Common Voice: ``root/<split>.tsv`` (``client_id``, ``path``, ``sentence``,
    ...) naming files in ``root/clips/``.

    ``split`` is a TSV name without extension: ``train``, ``dev``, ``test``, ``validated``,
    ``other``, ... Rows whose clip is missing or unreadable are reported in ``bad_files``;
    rows with down-votes above ``max_down_votes`` (when given) are left out.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 clips_dir: str = "clips", max_down_votes: int | None = None,
                 verify: bool = True, min_seconds: float = 0.0, random_crop: bool | None = None,
                 cache: bool = True, sample_rate: int, channels: int | None = 1,
                 segment_seconds: float | None = 1.0, seed: int = 0) -> None:
        path = _check_dir(root, "Common Voice root")
        tsv = path / f"{split}.tsv"
        if not tsv.is_file():
            found = sorted(p.stem for p in path.glob("*.tsv"))
            raise DatasetError(f"Common Voice split '{split}' not found: no {tsv}; splits "
                               f"found: {', '.join(found) or '(none)'}")
        self.split = split
        utterances = _dedupe(_read_tsv(tsv, path / clips_dir, max_down_votes))
        if not utterances:
            raise DatasetError(f"{tsv} lists no clips (expected columns client_id, path, "
                               "sentence)")
        self._index_utterances(
            utterances, path, expected=f"clips listed in {tsv.name} under {clips_dir}/",
            extensions=(".mp3", ".wav", ".flac", ".ogg"), verify=verify,
            min_seconds=min_seconds, cache=cache, sample_rate=sample_rate, channels=channels,
            segment_seconds=segment_seconds, seed=seed,
            random_crop=split == "train" if random_crop is None else random_crop)


def _read_tsv(tsv: Path, clips: Path, max_down_votes: int | None) -> list[Utterance]:
    with tsv.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise DatasetError(f"{tsv} has no 'path' column (columns: {reader.fieldnames})")
        rows = []
        for row in reader:
            if not row.get("path"):
                continue
            votes = row.get("down_votes") or "0"
            if max_down_votes is not None and votes.isdigit() and int(votes) > max_down_votes:
                continue
            rows.append(Utterance(str(clips / row["path"]), (row.get("sentence") or "").strip(),
                                  row.get("client_id") or ""))
        return rows
