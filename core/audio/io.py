"""Audio file I/O with soundfile: load, save (atomic, clipping-safe) and header info.

Tensors are ``(channels, time)`` float32 everywhere. Every failure raises
:class:`AudioFileError`, whose message names the file and the reason.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import attrs
import numpy as np
import soundfile as sf
import torch

from audio_core.audio.resample import resample
from audio_core.audio.transforms import to_channels
from audio_core.errors import AudioCoreError

__all__ = [
    "FORMATS",
    "AudioFileError",
    "AudioInfo",
    "audio_info",
    "load_audio",
    "save_audio",
]

#: File extension -> soundfile container format that :func:`save_audio` can write.
FORMATS = {
    ".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3",
    ".aif": "AIFF", ".aiff": "AIFF", ".au": "AU", ".caf": "CAF",
}
_FLOAT_SUBTYPES = {"FLOAT", "DOUBLE"}


class AudioFileError(AudioCoreError):
    """An audio file is missing, empty, corrupt, non-finite or of an unsupported format.

    ``path`` is the file and ``reason`` a short human-readable cause (also in the message).
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")


@attrs.frozen
class AudioInfo:
    """Header facts of one audio file; ``duration`` is in seconds."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    duration: float
    format: str
    subtype: str = ""


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioFileError(path, "file not found")
    if path.is_dir():
        raise AudioFileError(path, "is a directory, expected an audio file")
    if not os.access(path, os.R_OK):
        raise AudioFileError(path, "permission denied: this user cannot read the file "
                                   "(check its permissions)")
    if path.stat().st_size == 0:
        raise AudioFileError(path, "empty file (0 bytes)")


def _libsndfile_reason(path: Path, err: Exception) -> str:
    text = str(err).split(":", 1)[-1].strip() if isinstance(err, sf.LibsndfileError) else str(err)
    if isinstance(err, PermissionError) or "system error" in text.lower():
        # libsndfile's "System error." hides errno: name the likely causes instead
        denied = not os.access(path, os.R_OK)
        return ("permission denied: this user cannot read the file" if denied else
                f"the operating system refused to read the file ({text.rstrip('.')}: "
                f"permissions, a broken link or an I/O error)")
    if path.suffix.lower() not in FORMATS and "recogni" in text.lower():
        return f"unsupported format '{path.suffix}' ({text})"
    return f"unreadable or corrupt audio ({text})"


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of ``path`` (no samples are decoded)."""
    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile raises RuntimeError/LibsndfileError/TypeError
        raise AudioFileError(path, _libsndfile_reason(path, err)) from err
    if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
        raise AudioFileError(path, "empty audio (no frames)")
    return AudioInfo(str(path), int(info.samplerate), int(info.channels), int(info.frames),
                     float(info.frames / info.samplerate), str(info.format), str(info.subtype))


def load_audio(path: str | os.PathLike, *, sample_rate: int | None = None,
               channels: int | None = None, offset: int = 0,
               frames: int = -1) -> tuple[torch.Tensor, int]:
    """Load ``path`` as a float32 tensor of shape (channels, time) and its sample rate.

    ``offset`` and ``frames`` select a region in samples at the *file's* rate (``frames=-1``:
    to the end). With ``sample_rate`` the audio is resampled (soxr) and that rate returned;
    with ``channels`` it is mixed down to mono or mono is repeated (see ``to_channels``).
    Raises :class:`AudioFileError` for missing, empty, corrupt or NaN/Inf audio.
    """
    path = Path(path)
    _check_exists(path)
    try:
        data, sr = sf.read(str(path), start=int(offset), frames=int(frames), dtype="float32",
                           always_2d=True)
    except Exception as err:
        raise AudioFileError(path, _libsndfile_reason(path, err)) from err
    if data.size == 0:
        where = f" at offset {offset}" if offset else ""
        raise AudioFileError(path, f"empty audio (no frames{where})")
    if not np.isfinite(data).all():
        raise AudioFileError(path, "contains NaN/Inf samples")
    audio = torch.from_numpy(np.ascontiguousarray(data.T))  # (channels, time)
    if channels is not None and audio.shape[0] != channels:
        try:
            audio = to_channels(audio, channels)
        except ValueError as err:
            raise AudioFileError(path, f"cannot use as {channels}-channel audio ({err})") from err
    if sample_rate is not None and sample_rate != sr:
        audio, sr = resample(audio, sr, sample_rate), sample_rate
    return audio, int(sr)


def save_audio(path: str | os.PathLike, audio: torch.Tensor | np.ndarray, sample_rate: int, *,
               subtype: str | None = None) -> Path:
    """Write ``audio`` of shape (channels, time) or (time,) to ``path`` atomically.

    The format follows the extension (:data:`FORMATS`); ``subtype`` defaults to soundfile's
    (PCM_16 for WAV/FLAC). For non-float subtypes samples are clipped to [-1, 1] so loud
    audio saturates instead of wrapping around. Data goes to a temporary file in the same
    folder that is then renamed over ``path``, so readers never see a half-written file.
    NaN/Inf samples raise :class:`AudioFileError`. Returns ``path``.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioFileError(path, f"unsupported format '{path.suffix}' for writing "
                                   f"(supported: {', '.join(sorted(FORMATS))})")
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioFileError(path, f"cannot write audio of shape {tuple(data.shape)}; "
                                   "expected (channels, time) or (time,) with time > 0")
    if not np.isfinite(data).all():
        raise AudioFileError(path, "refusing to write NaN/Inf samples")
    if (subtype or sf.default_subtype(fmt) or "").upper() not in _FLOAT_SUBTYPES:
        data = np.clip(data, -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # normal permissions
    try:
        sf.write(tmp, np.ascontiguousarray(data.T), int(sample_rate), subtype=subtype,
                 format=fmt)
        os.replace(tmp, path)
    except Exception as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, AudioCoreError):
            raise
        if isinstance(err, OSError):
            from audio_core.files import cause

            raise AudioFileError(path, f"could not write audio: {cause(err)}") from err
        raise AudioFileError(path, f"could not write audio ({err})") from err
    return path
