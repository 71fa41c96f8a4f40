"""Multi-band STFT discriminator (DAC-style): ``core.mbd``.

At each STFT resolution the complex spectrogram (real and imaginary parts as channels) is
split along frequency into bands, each band is scored by its own small 2-D conv stack, and
the band outputs, joined again along frequency, pass one output conv. Low and high
frequencies thus get separate weights (a plain STFT discriminator shares one kernel over
all frequencies), which sharpens high-frequency detail in GAN-trained codecs.

Contract as in :mod:`audio_core.components.discriminators`: ``forward(audio (batch,
channels, time))`` returns ``(logits, features)``; no layer mixes batch items.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.audio.dsp.stft import stacked_spectrogram
from audio_core.components.discriminators import (
    DiscriminatorOutput,
    _check_positive,
    merge_outputs,
    normalized,
)

#: Default band edges as fractions of the frequency axis (0 = DC, 1 = Nyquist).
BANDS: tuple[tuple[float, float], ...] = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75),
                                          (0.75, 1.0))


def band_bins(bands: Sequence[Sequence[float]], bins: int) -> list[tuple[int, int]]:
    """Fractional ``bands`` -> bin ranges ``[lo, hi)`` of a ``bins``-bin spectrum; a
    ``ValueError`` unless the bands are increasing, within [0, 1] and each gets >= 1 bin."""
    edges = [(round(float(lo) * bins), round(float(hi) * bins)) for lo, hi in bands]
    ok = bands and all(0.0 <= float(lo) < float(hi) <= 1.0 for lo, hi in bands) and \
        all(hi > lo for lo, hi in edges) and \
        all(a[1] <= b[0] for a, b in itertools.pairwise(edges))
    if not ok:
        raise ValueError(f"bands must be increasing, non-overlapping [lo, hi) fractions of "
                         f"the frequency axis within [0, 1], each at least one of the {bins} "
                         f"bins wide; got {[list(b) for b in bands]}")
    return edges


class BandSplitSTFTDiscriminator(nn.Module):
    """One STFT resolution: ``(batch, channels, time)`` -> complex STFT (``n_fft``, hop
    ``hop_length`` or ``n_fft // 4``, Hann window, scaled by ``1 / sqrt(n_fft)``, float32)
    -> ``(batch, 2 * channels, frames, n_fft // 2 + 1)`` -> one conv stack per band
    (a ``(3, 9)`` conv, then ``layers`` convs with stride 2 in frequency, width ``width``,
    then a ``(3, 3)`` conv) -> bands joined along frequency -> ``(3, 3)`` output conv.

    Returns one logits map ``(batch, 1, frames, bins')`` and ``len(bands) * (layers + 2)``
    feature maps.
    """

    def __init__(self, n_fft: int, channels: int = 1, hop_length: int | None = None,
                 bands: Sequence[Sequence[float]] = BANDS, width: int = 32, layers: int = 4,
                 norm: str = "weight") -> None:
        super().__init__()
        _check_positive(n_fft=n_fft, channels=channels, width=width, layers=layers)
        self.n_fft, self.hop_length = int(n_fft), int(hop_length or n_fft // 4)
        self.bins = band_bins(bands, self.n_fft // 2 + 1)

        def stack() -> nn.ModuleList:
            convs = [nn.Conv2d(2 * channels, width, (3, 9), padding=(1, 4))]
            convs += [nn.Conv2d(width, width, (3, 9), stride=(1, 2), padding=(1, 4))
                      for _ in range(layers)]
            convs.append(nn.Conv2d(width, width, (3, 3), padding=(1, 1)))
            return nn.ModuleList(normalized(c, norm) for c in convs)

        self.bands = nn.ModuleList(stack() for _ in self.bins)
        self.out = normalized(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)), norm)

    def spectrogram(self, audio: Tensor) -> Tensor:
        """``(batch, channels, time)`` -> ``(batch, 2 * channels, frames, bins)``, float32."""
        return stacked_spectrogram(audio, self.n_fft, self.hop_length)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        spec = self.spectrogram(audio).to(next(self.parameters()).dtype)
        features, outputs = [], []
        for (lo, hi), convs in zip(self.bins, self.bands, strict=True):
            assert isinstance(convs, nn.ModuleList)
            x = spec[..., lo:hi]
            for conv in convs:
                x = F.leaky_relu(conv(x), 0.1)
                features.append(x)
            outputs.append(x)
        return [self.out(torch.cat(outputs, dim=-1))], features


class MultiBandDiscriminator(nn.Module):
    """DAC-style: one :class:`BandSplitSTFTDiscriminator` per ``n_fft`` (hop ``n_fft //
    4``), all with the same ``bands``.

    Returns ``len(n_ffts)`` logits maps and ``len(n_ffts) * len(bands) * (layers + 2)``
    feature maps.
    """

    def __init__(self, channels: int = 1, n_ffts: Sequence[int] = (2048, 1024, 512),
                 bands: Sequence[Sequence[float]] = BANDS, width: int = 32, layers: int = 4,
                 norm: str = "weight") -> None:
        super().__init__()
        if not n_ffts:
            raise ValueError("MultiBandDiscriminator needs at least one n_fft")
        self.discriminators = nn.ModuleList(
            BandSplitSTFTDiscriminator(int(n), channels, None, bands, width, layers, norm)
            for n in n_ffts)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        return merge_outputs(d(audio) for d in self.discriminators)
