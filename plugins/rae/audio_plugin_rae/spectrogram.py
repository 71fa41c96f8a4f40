"""``rae.spectrogram``: a vision transformer (DINOv2) on a mel spectrogram seen as an image.

Per ``max_duration`` window at 16 kHz: mel power spectrogram -> dB (floored ``top_db``
below its peak) -> min-max scaled to [0, 1] -> repeated to 3 channels -> resized to the
model's ``image_size`` square -> ImageNet mean/std normalisation -> DINOv2 -> the hidden
states of ``layer`` through a parameter-free layer norm (the original RAE drops the final
layer norm's affine) -> patch tokens only (CLS and register tokens dropped).

The ``g x g`` patch grid (``g = image_size / patch``; rows = mel frequency, columns = time)
is returned *time-major*: token ``t * g + f`` is column ``t``, row ``f``, so consecutive
frames of the latent walk forward in time, ``tokens_per_step = g`` tokens per column. A
window of ``W`` samples gives ``g * g`` tokens of ``W / g**2`` samples each (the encoder's
patch size): ``W`` must be a multiple of ``g**2``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor

from audio_core.audio.dsp import MelSpectrogram
from audio_core.audio.dsp.real_stft import onnx_tracing
from audio_core.models.frozen_encoder import EncoderGeometryError, FrozenEncoder
from audio_plugin_rae.pretrained import load_backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_RATE = 16000


class SpectrogramEncoder(FrozenEncoder):
    """See the module docstring.

    Params: ``pretrained`` (a local DINOv2 folder, with or without registers) or ``config``
    (``model_type`` plus config fields, random init), ``layer`` (hidden-state index, ``-1``:
    the last block), ``image_size`` (default: the model's), mel settings ``n_fft``,
    ``mel_hop``, ``n_mels``, ``top_db``, and ``max_duration`` (seconds per window; its
    samples at 16 kHz must be a multiple of the patch-token count), ``normalize``.
    """

    def __init__(self, pretrained: str | None = None, config: dict[str, Any] | None = None,
                 layer: int = -1, image_size: int | None = None, n_fft: int = 400,
                 mel_hop: int = 160, n_mels: int = 128, top_db: float = 80.0, *,
                 sample_rate: int = 16000, channels: int = 1, max_duration: float = 10.24,
                 normalize: str = "none") -> None:
        backbone = load_backbone("rae.spectrogram", "AutoModel", None, pretrained, config)
        cfg = backbone.config
        size = int(image_size or cfg.image_size)
        patch = int(cfg.patch_size)
        if size % patch:
            raise EncoderGeometryError(f"rae.spectrogram: image_size {size} is not a multiple "
                                       f"of the model's patch size {patch}")
        grid = size // patch
        if max_duration is None:
            raise EncoderGeometryError("rae.spectrogram needs max_duration: each window is "
                                       "resized to one image")
        window = max_duration * INPUT_RATE
        tokens = grid * grid
        if abs(window - round(window)) > 1e-6 or round(window) % tokens:
            raise EncoderGeometryError(
                f"rae.spectrogram: max_duration={max_duration:g} s is {window:g} samples at "
                f"{INPUT_RATE} Hz, not a multiple of the {tokens} patch tokens of a window "
                f"({grid} x {grid} patches of {patch} px on a {size} px image); use e.g. "
                f"{max(1, round(window / tokens)) * tokens / INPUT_RATE:g} s")
        super().__init__(hidden_size=cfg.hidden_size, patch_size=round(window) // tokens,
                         sample_rate=sample_rate, channels=channels,
                         max_duration=max_duration, normalize=normalize,
                         input_rate=INPUT_RATE, tokens_per_step=grid)
        self.backbone, self.image_size, self.grid = backbone, size, grid
        self.skip = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)
        self.layer, self.eps = int(layer), float(cfg.layer_norm_eps)
        layers = int(cfg.num_hidden_layers)
        if not -(layers + 1) <= self.layer <= layers:
            raise ValueError(f"rae.spectrogram: layer={layer} is outside the model's {layers} "
                             f"layers")
        self.mel = MelSpectrogram(INPUT_RATE, n_fft=n_fft, hop_length=mel_hop, n_mels=n_mels,
                                  log="db", top_db=top_db)
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def image(self, windows: Tensor) -> Tensor:
        """Windows ``(n, samples)`` -> normalised images ``(n, 3, image_size, image_size)``."""
        db = self.mel(windows.float())
        low = db.amin(dim=(-2, -1), keepdim=True)
        high = db.amax(dim=(-2, -1), keepdim=True)
        scaled = (db - low) / (high - low + 1e-8)
        resized = F.interpolate(rearrange(scaled, "n m t -> n 1 m t"),
                                size=(self.image_size, self.image_size), mode="bilinear",
                                align_corners=False)
        return (repeat(resized, "n 1 h w -> n (3 1) h w") - self.image_mean) / self.image_std

    def features(self, windows: Tensor) -> Tensor:
        with self._table_positions():
            out = self.backbone(pixel_values=self.image(windows), output_hidden_states=True)
        hidden = out.hidden_states[self.layer][:, self.skip:]
        hidden = F.layer_norm(hidden.float(), (self.hidden_size,), eps=self.eps)
        return rearrange(hidden, "n (f t) h -> n (t f) h", f=self.grid)

    @contextlib.contextmanager
    def _table_positions(self) -> Iterator[None]:
        """While an ONNX graph is traced, the backbone's position table as it is: transformers
        resizes it (bicubic with antialiasing, no ONNX form) whenever it is traced, although
        every image here has the model's size, where eager code uses the table unchanged."""
        embeddings = getattr(self.backbone, "embeddings", None)
        if not onnx_tracing() or embeddings is None:
            yield
            return
        table = embeddings.position_embeddings
        if self.image_size != int(self.backbone.config.image_size):
            raise EncoderGeometryError(
                f"rae.spectrogram: an ONNX graph needs image_size == the model's "
                f"{self.backbone.config.image_size} (got {self.image_size}): resizing the "
                f"position table has no ONNX form")
        embeddings.interpolate_pos_encoding = lambda *args, **kwargs: table
        try:
            yield
        finally:
            del embeddings.interpolate_pos_encoding
