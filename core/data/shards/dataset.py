"""``core.shards``: samples of tar shards (``audio-core data pack``), local or remote.

Items are those of the folder datasets (:mod:`audio_core.data.base`): ``audio``
``(channels, segment_samples)``, ``mask``, ``label``, ``offset``, ``length``, plus ``text``
(the caption, ``""`` without one) and ``path`` = ``SHARD_URL/KEY``. Shards of latents
(``audio-core latents --shards``) give the items of ``core.latents`` instead: ``latent``
``(latent_dim, frames)``, ``mask`` ``(frames,)``, ``label``, ``text``, ``path``,
``offset``/``length`` in frames.

Order and resume: the dataset is indexed by global sample id; its sampler
(:class:`ShardSampler`, made by :meth:`ShardDataset.make_sampler`) plans each epoch from
the shard sample counts (:mod:`.plan`), so an epoch's sequence of ids is a function of the
seed, the epoch and the world size, whatever the number of DataLoader workers. Crops are
drawn from (seed, epoch, sample id) (:class:`CropDraw`), the same on any rank. A
checkpoint's loader state therefore resumes the exact sequence of examples.

A member that cannot be read or decoded (missing shard, truncated shard, corrupt audio,
connection lost after retries) is recorded in ``bad_files`` (and appended to the run's
``data_errors.jsonl`` when the trainer set :meth:`ShardDataset.set_report_file`), and the
next readable sample of the same shard, then of the following shards, is used instead.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from audio_core.audio.transforms import pad_or_trim, to_channels
from audio_core.data.base import (
    BadFileReport,
    DatasetError,
    EpochRankMixin,
    cut_window,
    read_window,
)
from audio_core.data.latent_model import LatentModelMixin
from audio_core.data.sampler import ResumableSampler
from audio_core.data.shards.format import ShardFormatError, ShardMembers
from audio_core.data.shards.plan import Segment, rank_plan
from audio_core.data.shards.source import ShardIOError, ShardSource, resolve_shards

__all__ = ["ShardDataset", "ShardSampler"]

log = logging.getLogger("audio_core.data")


class ShardDataset(LatentModelMixin, EpochRankMixin, Dataset):
    """Samples of the shards named by ``urls`` (see :mod:`.source` for the forms).

    ``shuffle``/``buffer``: per-epoch shard order and a shuffle buffer of ``buffer``
    samples (the sampler's); ``random_crop=False`` crops from the start. ``channels=None``
    keeps each sample's channel count. ``sample_rate`` defaults to the rate the shards were
    packed at. ``storage_options`` go to fsspec (e.g. ``{"client_kwargs": {"endpoint_url":
    ...}}``). ``probe`` reads one sample at start-up, so shards that cannot be read at all
    are an error before the first step.
    ``expected_fingerprint`` (latent shards) must match the source model's.
    """

    def __init__(self, urls: str | Sequence[str], *, sample_rate: int | None = None,
                 channels: int | None = 1, segment_seconds: float | None = 1.0, seed: int = 0,
                 shuffle: bool = True, buffer: int = 1000, random_crop: bool = True,
                 storage_options: Mapping[str, Any] | None = None,
                 expected_fingerprint: str | None = None, probe: bool = True) -> None:
        if segment_seconds is not None and segment_seconds <= 0:
            raise DatasetError(f"segment_seconds must be positive, got {segment_seconds!r}")
        if int(buffer) < 1:
            raise DatasetError(f"buffer must be at least 1 sample, got {buffer!r}")
        self.source = ShardSource(storage_options)
        try:
            shards = resolve_shards(urls, self.source)
        except ShardFormatError as exc:
            raise DatasetError(str(exc)) from exc
        self.urls, self.counts = shards.urls, np.asarray(shards.counts, dtype=np.int64)
        self.content, self.header = shards.content, shards.header
        self._members: OrderedDict[int, ShardMembers] = OrderedDict(shards.members)
        self._pinned = set(shards.members)  # scanned at resolve time: never evicted
        self.starts = np.concatenate([[0], np.cumsum(self.counts)])
        if self.starts[-1] == 0:
            raise DatasetError(f"the shards of {urls!r} hold no samples")
        self.classes = list(self.header.get("classes", []))
        self.seed, self.shuffle, self.buffer = int(seed), bool(shuffle), int(buffer)
        self.random_crop, self.channels = random_crop, channels
        self.segment_seconds = segment_seconds
        self.bad_files = BadFileReport()
        self._failed_shards: set[int] = set()
        self._failed_ids: set[int] = set()
        self._report_file: str | None = None
        if self.content == "latents":
            self._init_latents(expected_fingerprint)
        else:
            rate = sample_rate or self.header.get("sample_rate")
            if not rate:
                raise DatasetError("core.shards needs a sample_rate (data.sample_rate), the "
                                   "shards were packed without one")
            self.sample_rate = int(rate)
            self.segment_samples = (None if segment_seconds is None
                                    else round(segment_seconds * self.sample_rate))
        if probe:
            self._probe()

    def _init_latents(self, expected_fingerprint: str | None) -> None:
        model = self.header.get("model") or {}
        if not {"fingerprint", "frame_rate", "latent_dim"} <= set(model):
            raise DatasetError("latent shards need index.json's \"model\" with fingerprint, "
                               "frame_rate and latent_dim (written by `audio-core latents`)")
        self.model = model
        self.check_fingerprint(expected_fingerprint, "latent shards")
        self.frame_rate = float(model["frame_rate"])
        self.segment_frames = None if self.segment_seconds is None else \
            max(1, round(self.segment_seconds * self.frame_rate))

    # -- sizes, order -------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def units_per_item(self) -> tuple[str, float]:
        """Throughput unit: seconds of audio per crop (whole samples: items)."""
        if self.content == "latents":
            return ("items", 1.0) if self.segment_frames is None else \
                ("audio_s", self.segment_frames / self.frame_rate)
        if self.segment_samples is None:
            return "items", 1.0
        return "audio_s", self.segment_samples / self.sample_rate

    def make_sampler(self, *, seed: int, rank: int, world_size: int, shuffle: bool,
                     drop_last: bool) -> ShardSampler:
        """This dataset's resumable order for one rank (used by ``make_dataloader``)."""
        del drop_last  # every rank gets len // world_size samples per epoch either way
        return ShardSampler(self.counts.tolist(), seed=seed, rank=rank,
                            world_size=world_size, shuffle=shuffle and self.shuffle,
                            buffer=self.buffer)

    def set_report_file(self, path: str | os.PathLike | None) -> None:
        """Append every unreadable member as a JSON line to ``path`` (from any worker)."""
        self._report_file = None if path is None else str(path)

    # -- reading --------------------------------------------------------------------------
    def locate(self, index: int) -> tuple[int, int]:
        """``(shard number, member number)`` of global sample ``index``."""
        shard = int(np.searchsorted(self.starts, index, side="right") - 1)
        return shard, int(index - self.starts[shard])

    def members(self, shard: int) -> ShardMembers:
        m = self._members.get(shard)
        if m is None:
            m = self.source.members(self.urls[shard])
            if len(m) != self.counts[shard]:
                raise ShardIOError(self.urls[shard], "", f"member index lists {len(m)} "
                                   f"samples, index.json {self.counts[shard]}")
            self._members[shard] = m
            evictable = [k for k in self._members if k not in self._pinned]
            if len(evictable) > 64:
                self._members.pop(evictable[0])
        return m

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        index %= n
        for candidate in self._fallbacks(index):
            shard, member = self.locate(candidate)
            try:
                return self._item(shard, member, CropDraw(self.seed, self.epoch, index))
            except ShardIOError as exc:
                self._failed_ids.add(candidate)
                self._record(exc, shard)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                self._failed_ids.add(candidate)
                self._record(ShardIOError(self.urls[shard], self._member_name(shard, member),
                                          f"cannot decode ({exc})"), shard)
        raise DatasetError(f"no sample of the {len(self.urls)} shard(s) can be read; see "
                           f"dataset.bad_files ({self.bad_files.to_dict()[:3]})")

    def _fallbacks(self, index: int):
        """``index``, then the rest of its shard, then the following shards (wrapping)."""
        shard, _ = self.locate(index)
        lo, hi = int(self.starts[shard]), int(self.starts[shard + 1])
        for i in itertools.chain(range(index, hi), range(lo, index)):
            if shard not in self._failed_shards and i not in self._failed_ids:
                yield i
        for k in range(1, len(self.urls) + 1):
            s = (shard + k) % len(self.urls)
            if s == shard or s in self._failed_shards:
                continue
            for i in range(int(self.starts[s]), int(self.starts[s + 1])):
                if s in self._failed_shards:
                    break
                if i not in self._failed_ids:
                    yield i

    def _member_name(self, shard: int, member: int) -> str:
        m = self._members.get(shard)
        return f"{m.keys[member]}.{m.ext[member]}" if m is not None else f"#{member}"

    def _record(self, exc: ShardIOError, shard: int) -> None:
        whole = not exc.member
        if whole:
            self._failed_shards.add(shard)
        key = exc.shard if whole else f"{exc.shard}:{exc.member}"
        if self.bad_files.add(key, exc.reason):
            log.warning("skipping unreadable %s: %s", "shard" if whole else "sample", exc)
            if self._report_file is not None:
                line = json.dumps({"shard": exc.shard, "member": exc.member,
                                   "reason": exc.reason}) + "\n"
                with open(self._report_file, "a", encoding="utf-8") as f:
                    f.write(line)

    def _item(self, shard: int, member: int, rng: CropDraw) -> dict[str, Any]:
        m = self.members(shard)
        name = f"{m.keys[member]}.{m.ext[member]}"
        base = {"label": int(m.label[member]), "text": m.text[member],
                "path": f"{self.urls[shard]}/{m.keys[member]}"}
        try:
            if self.content == "latents":
                payload = self.source.read_range(self.urls[shard], m.offset[member],
                                                 m.size[member], member=name)
                return {**self._latent(payload, int(m.frames[member]), rng), **base}
            return {**self._audio(shard, m, member, rng, name), **base}
        except ShardIOError as exc:
            if exc.reason == "not found":  # the whole shard is missing
                raise ShardIOError(exc.shard, "", exc.reason) from exc
            raise

    def _audio(self, shard: int, m: ShardMembers, member: int, rng: CropDraw,
               name: str) -> dict[str, Any]:
        frames, fsr, sr = int(m.frames[member]), int(m.sample_rate[member]), self.sample_rate
        total = frames * sr // fsr
        seg = self.segment_samples
        if seg is None:
            offset, lo, hi = 0, 0, frames
        else:
            offset = rng.below(total - seg + 1) if self.random_crop and total > seg else 0
            lo, hi = read_window(offset, seg, fsr, sr, frames)
        if m.pcm_dtype[member]:
            data = self._pcm(shard, m, member, lo, hi, name)
        else:
            payload = self.source.read_range(self.urls[shard], m.offset[member], m.size[member],
                                             member=name)
            with sf.SoundFile(io.BytesIO(payload)) as f:
                f.seek(lo)
                data = f.read(hi - lo, dtype="float32", always_2d=True)
        if data.size == 0 or (m.pcm_dtype[member] != "<i2" and not np.isfinite(data).all()):
            raise ValueError("no samples" if data.size == 0 else "NaN/Inf samples")
        audio = torch.from_numpy(np.ascontiguousarray(data.T))
        if self.channels is not None and audio.shape[0] != self.channels:
            audio = to_channels(audio, self.channels)
        if seg is None:
            audio = cut_window(audio, 0, 0, total, fsr, sr) if fsr != sr else audio
            mask = torch.ones(audio.shape[-1], dtype=torch.bool)
        else:
            audio, mask = pad_or_trim(cut_window(audio, lo, offset, seg, fsr, sr), seg)
        return {"audio": audio.to(torch.float32).contiguous(), "mask": mask,
                "offset": offset, "length": min(mask.shape[0], total - offset),
                "seconds_start": offset / sr, "seconds_total": frames / fsr}

    def _pcm(self, shard: int, m: ShardMembers, member: int, lo: int, hi: int,
             name: str) -> np.ndarray:
        """Frames ``[lo, hi)`` ``(frames, channels)`` float32 of a PCM WAV member: one read of
        exactly those bytes, scaled as libsndfile scales them (int16 / 32768)."""
        dtype = np.dtype(m.pcm_dtype[member])
        step = dtype.itemsize * int(m.channels[member])
        raw = self.source.read_range(self.urls[shard], m.pcm_offset[member] + lo * step,
                                     (hi - lo) * step, member=name)
        data = np.frombuffer(raw, dtype).reshape(hi - lo, int(m.channels[member]))
        return data.astype(np.float32) / 32768.0 if dtype.kind == "i" else data.astype(np.float32)

    def _latent(self, payload: bytes, total: int, rng: CropDraw) -> dict[str, Any]:
        seg = self.segment_frames
        if seg is None:
            offset, take = 0, total
        else:
            offset = rng.below(total - seg + 1) if self.random_crop and total > seg else 0
            take = min(seg, total - offset)
        array = np.load(io.BytesIO(payload), allow_pickle=False)
        latent = torch.from_numpy(np.ascontiguousarray(array[:, offset:offset + take])).float()
        size = take if seg is None else seg
        mask = torch.zeros(size, dtype=torch.bool)
        mask[:take] = True
        if take < size:
            latent = torch.nn.functional.pad(latent, (0, size - take))
        return {"latent": latent.contiguous(), "mask": mask, "offset": offset, "length": take,
                "seconds_start": offset / self.frame_rate, "seconds_total": total / self.frame_rate}

    def _probe(self) -> None:
        """Read one sample of the first readable shard; none readable: :class:`DatasetError`."""
        problems = []
        for shard in range(len(self.urls)):
            if self.counts[shard] == 0:
                continue
            try:
                self._item(shard, 0, CropDraw(0, 0, 0))
                return
            except ShardIOError as exc:
                problems.append(str(exc))
                self._record(exc, shard)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                problems.append(f"{self.urls[shard]}: cannot decode ({exc})")
            if len(problems) >= 1000:
                break
        raise DatasetError(f"none of the {len(self.urls)} shard(s) can be read: "
                           f"{'; '.join(problems[:3])}")


class CropDraw:
    """The random crop offset of sample ``index`` in ``epoch``: a SplitMix64 hash of
    (seed, epoch, index), the same on every rank and worker (and ~50x cheaper than a
    numpy generator per item)."""

    def __init__(self, seed: int, epoch: int, index: int) -> None:
        self.state = _mix(_mix(_mix(seed & _MASK) ^ epoch) ^ index)

    def below(self, n: int) -> int:
        """An integer in ``[0, n)``."""
        return (self.state * n) >> 64


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64's finaliser: a bijection of 64-bit integers that scatters every bit."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class ShardSampler(ResumableSampler):
    """One rank's share of each epoch of a sharded dataset, resumable (see :mod:`.plan`).

    State: ``epoch``, ``consumed`` (samples of this rank in the current segment) and
    ``segments`` (earlier parts of the epoch under other world sizes). Loading a state
    saved under another world size continues the same epoch: no consumed sample repeats.
    """

    def __init__(self, counts: Sequence[int], *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True, buffer: int = 1000) -> None:
        self.counts = [int(c) for c in counts]
        self.buffer, self.segments = int(buffer), []
        super().__init__(sum(self.counts), shuffle=shuffle, seed=seed, rank=rank,
                         world_size=world_size, drop_last=True)
        self.num_samples = len(self._plan())

    def _plan(self) -> np.ndarray:
        key = (self.seed, self.epoch, tuple(self.segments))
        cache = self.__dict__.get("_plan_cache")
        if cache is None or cache[0] != key:
            ids = rank_plan(self.counts, seed=self.seed, epoch=self.epoch, rank=self.rank,
                            world_size=self.world_size, shuffle=self.shuffle,
                            buffer=self.buffer, segments=self.segments)
            self._plan_cache = cache = (key, ids)
        return cache[1]

    def _reset(self) -> None:
        self.segments = []
        self.num_samples = len(self._plan())

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) != self.epoch:
            self.epoch, self.consumed = int(epoch), 0
            self._reset()

    def next_epoch(self) -> None:
        self.epoch, self.consumed = self.epoch + 1, 0
        self._reset()

    def indices(self, epoch: int | None = None) -> list[int]:
        if epoch is not None and epoch != self.epoch:
            return rank_plan(self.counts, seed=self.seed, epoch=epoch, rank=self.rank,
                             world_size=self.world_size, shuffle=self.shuffle,
                             buffer=self.buffer).tolist()
        return self._plan().tolist()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "kind": "shards", "buffer": self.buffer,
                "shards": len(self.counts), "segments": [list(s) for s in self.segments]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``'s position; another world size continues the same epoch."""
        if state.get("kind") != "shards":
            raise ValueError("cannot resume a sharded dataset from a loader state of another "
                             "dataset kind")
        for key, mine in (("dataset_size", self.dataset_size), ("shards", len(self.counts)),
                          ("buffer", self.buffer)):
            if state[key] != mine:
                raise ValueError(f"cannot resume sampler: {key} was {state[key]}, now {mine}")
        self.seed, self.shuffle = int(state["seed"]), bool(state["shuffle"])
        self.epoch = int(state["epoch"])
        segments: list[Segment] = [(int(w), int(c)) for w, c in state.get("segments", [])]
        if int(state["world_size"]) != self.world_size:
            segments.append((int(state["world_size"]), int(state["consumed"])))
            consumed = 0
        else:
            consumed = int(state["consumed"])
        self.segments = segments
        self.num_samples = len(self._plan())
        self.consumed = min(self.num_samples, consumed)
