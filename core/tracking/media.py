"""Names, folders and encodings for logged audio and images, shared by the backends."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from audio_core.tracking.base import ImageLike


def safe_name(name: str) -> str:
    """A relative POSIX path safe as file name and MLflow key: ``"val/a b:1"`` -> ``"val/a b_1"``.

    Keeps letters, digits, ``_ - . /`` and spaces; drops empty, ``.`` and ``..`` components.
    """
    cleaned = re.sub(r"[^\w\-./ ]", "_", str(name))
    parts = [p.strip() for p in cleaned.split("/") if p.strip() not in ("", ".", "..")]
    return "/".join(parts) or "unnamed"


def step_folder(step: int) -> str:
    """``step_0001234``: the per-step folder name for samples and images."""
    return f"step_{int(step):07d}"


def audio_array(audio: torch.Tensor | np.ndarray) -> np.ndarray:
    """(channels, time) or (time,) -> float32 numpy (channels, time), clipped to [-1, 1]."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    data = np.asarray(audio, dtype=np.float32)
    data = data[None] if data.ndim == 1 else data
    if data.ndim != 2:
        raise ValueError(f"audio must be (channels, time) or (time,), got {data.shape}")
    return np.clip(np.nan_to_num(data), -1.0, 1.0)


def wav_bytes(audio: torch.Tensor | np.ndarray, sample_rate: int) -> tuple[bytes, int, int]:
    """16-bit PCM WAV bytes of ``audio`` (channels, time), with channels and frames."""
    data = audio_array(audio)
    buf = io.BytesIO()
    sf.write(buf, data.T, int(sample_rate), format="WAV", subtype="PCM_16")
    return buf.getvalue(), data.shape[0], data.shape[1]


def image_array(image: ImageLike) -> np.ndarray:
    """Path or array -> uint8 (H, W, C) with C in {1, 3, 4}; float input is taken as [0, 1]."""
    if isinstance(image, str | os.PathLike):
        from matplotlib import image as mpimg  # lazy: matplotlib is only needed for images

        image = mpimg.imread(Path(image))
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float().numpy()
    arr = np.asarray(image)
    arr = arr[..., None] if arr.ndim == 2 else arr
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(f"image must be (H, W) or (H, W, 1|3|4), got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0) * 255 + 0.5)
        arr = arr.astype(np.uint8)
    return arr


def save_png(image: ImageLike, path: Path) -> Path:
    """Write ``image`` as PNG to ``path`` (copying a PNG file as is)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image, str | os.PathLike) and Path(image).suffix.lower() == ".png":
        path.write_bytes(Path(image).read_bytes())
        return path
    from matplotlib import image as mpimg

    arr = image_array(image)
    mpimg.imsave(path, arr[..., 0] if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=255,
                 format="png")
    return path
