"""TensorBoard backend: scalars, params as text, multi-channel audio and images."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from audio_core.tracking.base import ImageLike, Tracker, TrackingError, to_scalar
from audio_core.tracking.media import image_array, wav_bytes
from audio_core.tracking.params import flatten_params


class TensorBoardTracker(Tracker):
    """Writes TensorBoard event files to ``log_dir`` with ``torch.utils.tensorboard``.

    tensorboard is imported lazily here; a missing package raises :class:`TrackingError`.
    Params are logged once as a markdown table under the text tag ``params``. Audio keeps all
    channels (16-bit WAV, clipped to [-1, 1]).
    """

    name = "tensorboard"

    def __init__(self, log_dir: str | os.PathLike, flush_secs: int = 30):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise TrackingError(
                "tracking backend 'tensorboard' needs the tensorboard package "
                f"(pip install tensorboard): {err}") from err
        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=flush_secs)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(str(key), to_scalar(value), int(step))

    def log_params(self, params: Mapping[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in sorted(flatten_params(params).items()))
        self._writer.add_text("params", "| param | value |\n|---|---|\n" + rows, 0)

    def log_audio(self, name: str, audio: Tensor, sample_rate: int, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary  # pyright: ignore

        data, channels, frames = wav_bytes(audio, sample_rate)
        record = Summary.Audio(sample_rate=float(sample_rate), num_channels=channels,
                               length_frames=frames, encoded_audio_string=data,
                               content_type="audio/wav")
        summary = Summary(value=[Summary.Value(tag=name, audio=record)])
        # SummaryWriter.add_audio only takes mono; write the summary ourselves.
        self._writer._get_file_writer().add_summary(summary, int(step))

    def log_image(self, name: str, image: ImageLike, step: int) -> None:
        self._writer.add_image(name, image_array(image), int(step), dataformats="HWC")

    def flush(self) -> None:
        self._writer.flush()

    def close(self, *, failed: bool = False) -> None:
        self._writer.close()
