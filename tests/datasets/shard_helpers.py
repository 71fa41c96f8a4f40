"""Small sharded datasets for tests, written with the layout's own shard writer.

Each sample's audio is a different tone (its frequency encodes the sample number), so
items and crops can be told apart. Not collected by pytest.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_core.data.shards.format import FORMAT, ShardTarWriter, shard_name


def tone_bytes(n: int, *, seconds: float, sr: int, channels: int = 1, fmt: str = "FLAC",
               subtype: str | None = None) -> bytes:
    t = np.arange(round(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (200 + 10 * n) * t) + 0.01 * np.sin(2 * np.pi * 7 * t)
    data = np.repeat(x[:, None], channels, 1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, data, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def write_shards(out: Path, sizes: Sequence[int], *, seconds: float = 0.5, sr: int = 8000,
                 channels: int = 1, labels: bool = True, captions: bool = True,
                 fmt: str = "flac", subtype: str | None = None,
                 header: dict | None = None) -> Path:
    """``out/`` with one shard per entry of ``sizes`` (that many samples) + index.json."""
    out.mkdir(parents=True, exist_ok=True)
    records, n = [], 0
    for s, size in enumerate(sizes):
        writer = ShardTarWriter(out, shard_name(s))
        for _ in range(size):
            dur = seconds * (1 + (n % 3) / 2)  # 1x, 1.5x, 2x: crops land at many offsets
            frames = round(dur * sr)
            meta = {"frames": frames, "sample_rate": sr, "channels": channels,
                    "duration": frames / sr, "label": n % 2 if labels else -1,
                    "text": f"tone number {n}" if captions else "", "source": f"s{n}.wav"}
            writer.add(f"s{n:06d}", tone_bytes(n, seconds=dur, sr=sr, channels=channels,
                                               fmt=fmt.upper(), subtype=subtype), fmt, meta)
            n += 1
        records.append(writer.close().to_dict())
    index = {"format": FORMAT, "version": 1, "content": "audio", "samples": n,
             "seconds": sum(r["seconds"] for r in records), "sample_rate": sr,
             "classes": ["even", "odd"] if labels else [], "shards": records, **(header or {})}
    (out / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return out


def sample_number(item_path: str) -> int:
    """The sample number from an item's ``path`` (``SHARD_URL/sNNNNNN``)."""
    return int(item_path.rsplit("/s", 1)[-1])
