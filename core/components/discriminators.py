"""A minimal waveform discriminator and the container a GAN task trains as one engine.

Discriminator contract: ``forward(audio)`` with audio ``(batch, channels, time)`` returns
``(logits, features)``: a list of score tensors ``(batch, 1, frames)`` and a list of
intermediate feature maps ``(batch, width, frames)`` for feature matching.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

DiscriminatorOutput = tuple[list[Tensor], list[Tensor]]


class WaveformDiscriminator(nn.Module):
    """Strided Conv1d stack on the raw waveform.

    ``(batch, channels, time)`` -> one logits map ``(batch, 1, ~time / stride**layers)`` and
    ``layers + 1`` feature maps (every activation before the output convolution).
    """

    def __init__(self, channels: int = 1, width: int = 16, layers: int = 3, stride: int = 4,
                 max_width: int = 256, kernel_size: int = 15) -> None:
        super().__init__()
        if layers < 1 or stride < 1 or width < 1 or kernel_size < 1:
            raise ValueError(f"layers, stride, width and kernel_size must be >= 1; got "
                             f"layers={layers}, stride={stride}, width={width}, "
                             f"kernel_size={kernel_size}")
        pad = kernel_size // 2
        convs = [nn.Conv1d(channels, width, kernel_size, padding=pad)]
        w = width
        for _ in range(layers):
            nxt = min(2 * w, max_width)
            convs.append(nn.Conv1d(w, nxt, kernel_size, stride=stride, padding=pad))
            w = nxt
        self.convs = nn.ModuleList(convs)
        self.out = nn.Conv1d(w, 1, 3, padding=1)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        features, h = [], audio
        for conv in self.convs:
            h = nn.functional.leaky_relu(conv(h), 0.2)
            features.append(h)
        return [self.out(h)], features


class DiscriminatorList(nn.ModuleList):
    """Every discriminator of a run, as one module (the GAN task's "discriminator" role).

    ``forward(audio, index=None)`` runs all discriminators (or only ``index``) on
    ``(batch, channels, time)`` and returns one ``(logits, features)`` pair per
    discriminator run.
    """

    def __init__(self, discriminators: Iterable[nn.Module]) -> None:
        super().__init__(discriminators)
        if len(self) == 0:
            raise ValueError("DiscriminatorList needs at least one discriminator")

    def forward(self, audio: Tensor, index: int | None = None) -> list[DiscriminatorOutput]:
        chosen = list(self) if index is None else [self[index]]
        return [d(audio) for d in chosen]
