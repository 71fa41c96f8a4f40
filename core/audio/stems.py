"""Multi-stream "stem" files (``.stem.mp4``, as MUSDB18 ships): read and write with PyAV.

A stem file holds several AAC audio streams of equal length in one MP4 container; MUSDB18
orders them mixture, drums, bass, other, vocals. Audio is ``(channels, time)`` float32 as
everywhere in audio-core; a read of several streams returns ``(streams, channels, time)``.
PyAV (``pip install av``, wheels bundle FFmpeg) is imported on first use; without it the
functions raise :class:`~audio_core.audio.io.AudioFileError` saying so.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from audio_core.audio.io import AudioFileError


@attrs.frozen
class StemInfo:
    """Facts of a stem file: rate, channels and length (samples) of its audio streams."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    streams: int


def _av(path: str | os.PathLike):
    try:
        import av
    except ImportError as err:
        raise AudioFileError(path, f"reading or writing .stem.mp4 files needs PyAV (pip "
                                   f"install av, or audio-core[musdb]): {err}") from err
    return av


def _open(path: str | os.PathLike, mode: str = "r") -> Any:
    av = _av(path)
    if mode == "r" and not Path(path).is_file():
        raise AudioFileError(path, "file not found")
    try:
        return av.open(str(path), mode)  # type: ignore[call-overload]
    except Exception as err:  # FFmpeg errors: corrupt or not a container
        raise AudioFileError(path, f"cannot open as a stem file: {err}") from err


def stem_info(path: str | os.PathLike) -> StemInfo:
    """:class:`StemInfo` of ``path`` (from the container's headers, no decoding)."""
    with _open(path) as container:
        streams = container.streams.audio
        if not streams:
            raise AudioFileError(path, "no audio streams")
        first = streams[0]
        rate = int(first.codec_context.sample_rate)
        if first.duration is not None and first.time_base is not None:
            seconds = float(first.duration * first.time_base)
        elif container.duration is not None:
            seconds = container.duration / 1_000_000
        else:
            raise AudioFileError(path, "the container states no duration")
        return StemInfo(str(path), rate, int(first.codec_context.channels),
                        round(seconds * rate), len(streams))


def read_stems(path: str | os.PathLike, streams: Sequence[int], offset: int = 0,
               frames: int | None = None) -> np.ndarray:
    """Streams ``streams`` (indices among the audio streams) of ``path`` from sample
    ``offset`` for ``frames`` samples (``None``: to the end) -> float32 ``(len(streams),
    channels, n)``, zero where a stream has no samples. Decodes from the key frame before
    ``offset``; positions come from each frame's timestamp, so streams stay aligned."""
    with _open(path) as container:
        audio = container.streams.audio
        if any(not 0 <= i < len(audio) for i in streams):
            raise AudioFileError(path, f"has {len(audio)} audio streams; asked for "
                                       f"{list(streams)}")
        chosen = [audio[i] for i in streams]
        slot = {s.index: k for k, s in enumerate(chosen)}
        rate = int(chosen[0].codec_context.sample_rate)
        channels = int(chosen[0].codec_context.channels)
        end = None if frames is None else offset + int(frames)
        pieces: list[list[tuple[int, np.ndarray]]] = [[] for _ in chosen]
        reached = [False] * len(chosen)
        try:
            if offset > 0:
                first = chosen[0]
                container.seek(int(max(0.0, offset / rate - 0.05) / first.time_base),
                               stream=first)
            for packet in container.demux(*chosen):
                k = slot[packet.stream.index]
                for frame in packet.decode():
                    data = frame.to_ndarray().reshape(channels, -1)
                    pos = round(float(frame.pts * frame.time_base) * rate) \
                        if frame.pts is not None else 0
                    pieces[k].append((pos, data.astype(np.float32, copy=False)))
                    if end is not None and pos + data.shape[1] >= end:
                        reached[k] = True
                if all(reached):
                    break
        except AudioFileError:
            raise
        except Exception as err:
            raise AudioFileError(path, f"cannot decode: {err}") from err
    last = max((p + d.shape[1] for chunk in pieces for p, d in chunk), default=offset)
    length = (end if end is not None else last) - offset
    if length <= 0:
        raise AudioFileError(path, f"empty audio (no frames at offset {offset})")
    out = np.zeros((len(chosen), channels, length), dtype=np.float32)
    for k, chunk in enumerate(pieces):
        for pos, data in chunk:
            lo, hi = max(pos, offset), min(pos + data.shape[1], offset + length)
            if hi > lo:
                out[k, :, lo - offset:hi - offset] = data[:, lo - pos:hi - pos]
    if not np.isfinite(out).all():
        raise AudioFileError(path, "contains NaN/Inf samples")
    return out


def write_stems(path: str | os.PathLike, stems: np.ndarray, sample_rate: int, *,
                bitrate: int = 256_000) -> Path:
    """Write ``stems`` ``(streams, channels, time)`` (float, within [-1, 1]) as one AAC
    stream each into an MP4 container at ``path``; returns ``path``."""
    data = np.asarray(stems, dtype=np.float32)
    if data.ndim != 3 or data.shape[1] not in (1, 2) or data.shape[2] == 0:
        raise AudioFileError(path, f"cannot write stems of shape {tuple(data.shape)}; "
                                   f"expected (streams, 1 or 2 channels, time > 0)")
    av = _av(path)
    layout = "stereo" if data.shape[1] == 2 else "mono"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        streams = []
        for _ in range(data.shape[0]):
            stream = container.add_stream("aac", rate=int(sample_rate), layout=layout)
            stream.bit_rate = int(bitrate)
            streams.append(stream)
        for stream, audio in zip(streams, np.clip(data, -1.0, 1.0), strict=True):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio), format="fltp",
                                               layout=layout)
            frame.sample_rate = int(sample_rate)
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return path
