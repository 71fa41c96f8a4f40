"""Discriminators for GAN codecs, and the container a GAN task trains as one engine.

Discriminator contract: ``forward(audio)`` with audio ``(batch, channels, time)`` returns
``(logits, features)``: a list of score tensors ``(batch, 1, ...)`` (one per scale, period
or resolution) and a list of intermediate feature maps ``(batch, width, ...)`` for feature
matching. No layer mixes batch items (the GAN task runs ``cat([real, fake])`` in one call).

Built-ins (``core.*``):

- :class:`WaveformDiscriminator` (``core.waveform``): one strided Conv1d stack.
- :class:`MultiScaleDiscriminator` (``core.msd``, MelGAN-style): a waveform
  discriminator on the audio and on average-pooled (2x, 4x, ...) versions of it.
- :class:`MultiPeriodDiscriminator` (``core.mpd``, HiFi-GAN-style): for each period ``p``
  the audio is folded to ``(batch, channels, time / p, p)`` and scored by 2-D convolutions
  that only mix samples ``p`` apart.
- :class:`MultiScaleSTFTDiscriminator` (``core.msstft``, EnCodec-style): the complex STFT at
  several resolutions, real and imaginary parts as two channels per audio channel, scored by
  2-D convolutions over (frames, frequency bins). The STFT runs in float32.

``norm`` (``"weight"``, ``"spectral"`` or ``"none"``) reparametrises every convolution
with ``torch.nn.utils.parametrizations``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.audio.dsp.stft import stacked_spectrogram

DiscriminatorOutput = tuple[list[Tensor], list[Tensor]]

NORMS = ("none", "weight", "spectral")


def normalized(conv: nn.Module, norm: str) -> nn.Module:
    """``conv`` with weight or spectral normalisation (``norm="none"``: unchanged)."""
    if norm == "weight":
        return nn.utils.parametrizations.weight_norm(conv)
    if norm == "spectral":
        return nn.utils.parametrizations.spectral_norm(conv)
    if norm != "none":
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got '{norm}'")
    return conv


def _check_positive(**values: int) -> None:
    bad = {k: v for k, v in values.items() if int(v) < 1}
    if bad:
        raise ValueError("must be >= 1: " + ", ".join(f"{k}={v}" for k, v in bad.items()))


def _run(convs: nn.ModuleList, out: nn.Module, x: Tensor, slope: float) -> DiscriminatorOutput:
    """Conv stack with leaky ReLU: ``([out(h)], [every activation])``."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), slope)
        features.append(x)
    return [out(x)], features


def merge_outputs(outputs: Iterable[DiscriminatorOutput]) -> DiscriminatorOutput:
    """Several sub-discriminators' ``(logits, features)`` as one pair of flat lists."""
    logits: list[Tensor] = []
    features: list[Tensor] = []
    for lg, ft in outputs:
        logits += lg
        features += ft
    return logits, features


class WaveformDiscriminator(nn.Module):
    """Strided Conv1d stack on the raw waveform.

    ``(batch, channels, time)`` -> one logits map ``(batch, 1, ~time / stride**layers)`` and
    ``layers + 1`` feature maps (every activation before the output convolution).
    """

    def __init__(self, channels: int = 1, width: int = 16, layers: int = 3, stride: int = 4,
                 max_width: int = 256, kernel_size: int = 15, norm: str = "none") -> None:
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
        self.convs = nn.ModuleList(normalized(c, norm) for c in convs)
        self.out = normalized(nn.Conv1d(w, 1, 3, padding=1), norm)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        return _run(self.convs, self.out, audio, 0.2)


class MultiScaleDiscriminator(nn.Module):
    """MelGAN-style: one :class:`WaveformDiscriminator` per scale.

    Scale 0 sees the audio ``(batch, channels, time)``; scale ``i`` sees it average-pooled
    ``i`` times (kernel ``pool_kernel``, stride 2), i.e. ``time / 2**i`` samples. Returns
    ``scales`` logits maps and ``scales * (layers + 1)`` feature maps.
    """

    def __init__(self, channels: int = 1, scales: int = 3, width: int = 16, layers: int = 4,
                 stride: int = 4, max_width: int = 512, kernel_size: int = 15,
                 pool_kernel: int = 4, norm: str = "weight") -> None:
        super().__init__()
        _check_positive(scales=scales, pool_kernel=pool_kernel)
        self.discriminators = nn.ModuleList(
            WaveformDiscriminator(channels, width, layers, stride, max_width, kernel_size, norm)
            for _ in range(scales))
        self.pool = nn.AvgPool1d(pool_kernel, stride=2, padding=pool_kernel // 2,
                                 count_include_pad=False)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        def scales():
            x = audio
            for i, d in enumerate(self.discriminators):
                x = self.pool(x) if i else x
                yield d(x)

        return merge_outputs(scales())


class PeriodDiscriminator(nn.Module):
    """Audio ``(batch, channels, time)`` folded by ``period`` to ``(batch, channels,
    ceil(time / period), period)`` (reflect-padded at the end) and scored by Conv2d layers
    with kernels ``(kernel_size, 1)``: columns (samples ``period`` apart) are never mixed.

    Returns one logits map ``(batch, 1, frames, period)`` and ``layers + 1`` feature maps.
    """

    def __init__(self, period: int, channels: int = 1, width: int = 32, layers: int = 4,
                 kernel_size: int = 5, stride: int = 3, max_width: int = 512,
                 norm: str = "weight") -> None:
        super().__init__()
        _check_positive(period=period, width=width, layers=layers, kernel_size=kernel_size,
                        stride=stride)
        self.period = period
        pad = (kernel_size // 2, 0)
        convs, w_in = [], channels
        for i in range(layers):
            w_out = min(width * 4**i, max_width)
            convs.append(nn.Conv2d(w_in, w_out, (kernel_size, 1), (stride, 1), pad))
            w_in = w_out
        convs.append(nn.Conv2d(w_in, w_in, (kernel_size, 1), padding=pad))
        self.convs = nn.ModuleList(normalized(c, norm) for c in convs)
        self.out = normalized(nn.Conv2d(w_in, 1, (3, 1), padding=(1, 0)), norm)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        extra = -audio.shape[-1] % self.period
        if extra:
            audio = F.pad(audio, (0, extra), mode="reflect" if extra < audio.shape[-1]
                          else "constant")
        x = rearrange(audio, "b c (t p) -> b c t p", p=self.period)
        return _run(self.convs, self.out, x, 0.1)


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN-style: one :class:`PeriodDiscriminator` per period (default 2, 3, 5, 7, 11).

    Returns ``len(periods)`` logits maps and ``len(periods) * (layers + 1)`` feature maps.
    """

    def __init__(self, channels: int = 1, periods: Sequence[int] = (2, 3, 5, 7, 11),
                 width: int = 32, layers: int = 4, kernel_size: int = 5, stride: int = 3,
                 max_width: int = 512, norm: str = "weight") -> None:
        super().__init__()
        if not periods:
            raise ValueError("MultiPeriodDiscriminator needs at least one period")
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(int(p), channels, width, layers, kernel_size, stride, max_width,
                                norm) for p in periods)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        return merge_outputs(d(audio) for d in self.discriminators)


class STFTDiscriminator(nn.Module):
    """One STFT resolution: ``(batch, channels, time)`` -> complex STFT (``n_fft``, hop
    ``hop_length``, Hann window, scaled by ``1 / sqrt(n_fft)``, float32) -> ``(batch,
    2 * channels, frames, n_fft // 2 + 1)`` with real and imaginary parts as channels.

    Conv2d layers: a ``(3, 9)`` input layer, one layer per entry of ``dilations`` (dilated
    in time, stride 2 in frequency, width doubling up to ``max_width``) and a ``(3, 3)``
    layer; returns one logits map ``(batch, 1, frames, bins')`` and ``len(dilations) + 2``
    feature maps.
    """

    def __init__(self, n_fft: int, channels: int = 1, hop_length: int | None = None,
                 width: int = 32, dilations: Sequence[int] = (1, 2, 4), max_width: int = 512,
                 norm: str = "weight") -> None:
        super().__init__()
        _check_positive(n_fft=n_fft, width=width)
        self.n_fft, self.hop_length = int(n_fft), int(hop_length or n_fft // 4)
        convs = [nn.Conv2d(2 * channels, width, (3, 9), padding=(1, 4))]
        w = width
        for d in dilations:
            nxt = min(2 * w, max_width)
            convs.append(nn.Conv2d(w, nxt, (3, 9), stride=(1, 2), dilation=(int(d), 1),
                                   padding=(int(d), 4)))
            w = nxt
        convs.append(nn.Conv2d(w, w, (3, 3), padding=(1, 1)))
        self.convs = nn.ModuleList(normalized(c, norm) for c in convs)
        self.out = normalized(nn.Conv2d(w, 1, (3, 3), padding=(1, 1)), norm)

    def spectrogram(self, audio: Tensor) -> Tensor:
        """``(batch, channels, time)`` -> ``(batch, 2 * channels, frames, bins)``, float32."""
        return stacked_spectrogram(audio, self.n_fft, self.hop_length)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        x = self.spectrogram(audio).to(next(self.parameters()).dtype)
        return _run(self.convs, self.out, x, 0.2)


class MultiScaleSTFTDiscriminator(nn.Module):
    """EnCodec-style: one :class:`STFTDiscriminator` per ``n_fft`` (hop ``n_fft // 4``).

    Returns ``len(n_ffts)`` logits maps and ``len(n_ffts) * (len(dilations) + 2)`` feature
    maps.
    """

    def __init__(self, channels: int = 1, n_ffts: Sequence[int] = (2048, 1024, 512),
                 width: int = 32, dilations: Sequence[int] = (1, 2, 4), max_width: int = 512,
                 norm: str = "weight") -> None:
        super().__init__()
        if not n_ffts:
            raise ValueError("MultiScaleSTFTDiscriminator needs at least one n_fft")
        self.discriminators = nn.ModuleList(
            STFTDiscriminator(int(n), channels, None, width, dilations, max_width, norm)
            for n in n_ffts)

    def forward(self, audio: Tensor) -> DiscriminatorOutput:
        return merge_outputs(d(audio) for d in self.discriminators)


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
