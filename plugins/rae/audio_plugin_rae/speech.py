"""``rae.wav2vec2`` and ``rae.hubert``: self-supervised speech models as frozen encoders.

Raw 16 kHz waveform in (resampled from the data rate), the hidden states of one
transformer layer out (``layer``: 0 = the input of the first layer, ``-1`` = the last;
768 channels for base models), one token per 320 input samples (20 ms; the product of the
convolutional feature extractor's strides), through a parameter-free layer norm.

Each window is padded by the feature extractor's receptive field minus its stride (400 -
320 = 80 samples for base models, split between both ends), so a window of ``n * 320``
samples gives exactly ``n`` tokens centred on their 20 ms.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor

from audio_core.models.frozen_encoder import FrozenEncoder
from audio_plugin_rae.pretrained import load_backbone


def receptive_field(kernels: list[int], strides: list[int]) -> int:
    """Input samples seen by one output frame of a stack of 1-D convolutions."""
    field = 1
    for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
        field = (field - 1) * stride + kernel
    return field


class SpeechEncoder(FrozenEncoder):
    """A wav2vec 2.0-style model (``transformers`` ``model_class``) as a frozen encoder.

    Params: ``pretrained`` (a local folder, see :mod:`audio_plugin_rae.pretrained`) or
    ``config`` (config fields for a random-init model), ``layer``, ``max_duration``,
    ``normalize`` (``peak``/``standard``/``none``); ``sample_rate`` and ``channels`` come
    from the run's data settings.
    """

    model_class: ClassVar[str]
    config_class: ClassVar[str]
    component: ClassVar[str]

    def __init__(self, pretrained: str | None = None, config: dict[str, Any] | None = None,
                 layer: int = -1, *, sample_rate: int = 16000, channels: int = 1,
                 max_duration: float | None = 10.0, normalize: str = "peak") -> None:
        backbone = load_backbone(self.component, self.model_class, self.config_class,
                                 pretrained, config)
        cfg = backbone.config
        strides, kernels = list(cfg.conv_stride), list(cfg.conv_kernel)
        super().__init__(hidden_size=cfg.hidden_size, patch_size=math.prod(strides),
                         sample_rate=sample_rate, channels=channels, max_duration=max_duration,
                         normalize=normalize)
        self.backbone = backbone
        layers = int(cfg.num_hidden_layers)
        if not -(layers + 1) <= layer <= layers:
            raise ValueError(f"{self.component}: layer={layer} is outside the model's "
                             f"{layers} layers (0 = input of the first, {layers} or -1 = the "
                             f"last)")
        self.layer = int(layer)
        self.context = receptive_field(kernels, strides) - self.patch_size

    def features(self, windows: Tensor) -> Tensor:
        left = self.context // 2
        x = F.pad(windows, (left, self.context - left))
        hidden = self.backbone(x, output_hidden_states=True).hidden_states[self.layer]
        return F.layer_norm(hidden.float(), (self.hidden_size,))


class Wav2Vec2Encoder(SpeechEncoder):
    """wav2vec 2.0 (``facebook/wav2vec2-base``: 768 channels, 12 layers, 20 ms tokens)."""

    model_class = "Wav2Vec2Model"
    config_class = "Wav2Vec2Config"
    component = "rae.wav2vec2"


class HubertEncoder(SpeechEncoder):
    """HuBERT (``facebook/hubert-base-ls960``: 768 channels, 12 layers, 20 ms tokens)."""

    model_class = "HubertModel"
    config_class = "HubertConfig"
    component = "rae.hubert"
