"""STFT-domain encoder and decoder: frame-rate ConvNeXt stacks around an STFT / inverse STFT.

Encoder: ``(batch, channels, time)`` -> ``(batch, dim, ceil(time / hop_length))``: the
log-magnitude STFT (``n_fft = 4 * hop_length``, Hann window, centred frames) of every channel,
stacked, through ConvNeXt blocks at the frame rate.
Decoder: ``(batch, dim, frames)`` -> ``(batch, channels, frames * hop_length)``: ConvNeXt
blocks predict each frame's log magnitude and phase, and the inverse STFT (overlap-add) makes
the waveform (the head of Vocos, Siuzdak 2023).

All the work happens at the frame rate (``sample_rate / hop_length``) instead of the sample
rate, and the waveform's fine structure comes from the inverse STFT rather than from learned
upsampling, so on a CPU these learn a usable spectral envelope in far fewer steps and
CPU-seconds than the causal SEANet pair. They are not causal: each frame sees
``kernel_size // 2`` frames on either side in every block, plus the STFT window.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from audio_core.audio.dsp import istft, stft
from audio_core.contracts.components import Decoder, Encoder


def _positive(**values: int) -> None:
    for key, value in values.items():
        if int(value) < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")


def _fft_size(channels: int, dim: int, hop_length: int, n_fft: int | None) -> int:
    """The checked STFT size: ``n_fft``, default ``4 * hop_length``, at least one hop."""
    _positive(channels=channels, dim=dim, hop_length=hop_length)
    size = int(n_fft or 4 * hop_length)
    if size < hop_length:
        raise ValueError(f"n_fft ({size}) must be >= hop_length ({hop_length})")
    return size


class ConvNeXtBlock(nn.Module):
    """Depthwise conv -> layer norm -> pointwise MLP (``expansion`` x) -> scaled residual.

    ``(batch, width, frames)`` -> same shape.
    """

    def __init__(self, width: int, kernel_size: int = 7, expansion: int = 3,
                 layer_scale: float = 0.1) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2,
                                   groups=width)
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, expansion * width)
        self.down = nn.Linear(expansion * width, width)
        self.scale = nn.Parameter(torch.full((width,), float(layer_scale)))

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.depthwise(x).transpose(1, 2))
        h = self.down(F.gelu(self.up(h))) * self.scale
        return x + h.transpose(1, 2)


class _Trunk(nn.Module):
    """``(batch, in, frames)`` -> ``(batch, out, frames)``: input conv, ConvNeXt blocks, norm,
    pointwise output."""

    def __init__(self, in_dim: int, out_dim: int, width: int, layers: int, kernel_size: int,
                 expansion: int) -> None:
        super().__init__()
        _positive(width=width, layers=layers, kernel_size=kernel_size, expansion=expansion)
        self.inp = nn.Conv1d(in_dim, width, kernel_size, padding=kernel_size // 2)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(width, kernel_size, expansion)
                                      for _ in range(layers)))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.inp(x)).transpose(1, 2)
        return self.out(self.norm(h)).transpose(1, 2)


class SpectralEncoder(nn.Module, Encoder):
    """Log-magnitude STFT -> ConvNeXt blocks -> latent ``(batch, dim, ceil(time / hop))``.

    ``hop_length`` sets the frame rate (the codec's latent rate); ``n_fft`` defaults to
    ``4 * hop_length``. ``width``/``layers`` size the ConvNeXt stack.
    """

    def __init__(self, channels: int = 1, dim: int = 128, hop_length: int = 64,
                 n_fft: int | None = None, width: int = 256, layers: int = 4,
                 kernel_size: int = 7, expansion: int = 3) -> None:
        super().__init__()
        self.n_fft = _fft_size(channels, dim, hop_length, n_fft)
        self.channels, self.dim, self.hop_length = channels, dim, hop_length
        bins = self.n_fft // 2 + 1
        self.trunk = _Trunk(channels * bins, dim, width, layers, kernel_size, expansion)

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.dim() != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"expected a waveform (batch, {self.channels}, time), "
                             f"got shape {tuple(waveform.shape)}")
        batch, _, time = waveform.shape
        frames = -(-time // self.hop_length)
        x = F.pad(waveform, (0, frames * self.hop_length - time))
        spec = stft(x, self.n_fft, self.hop_length, center=True)[..., :frames]
        features = torch.log(spec.abs() + 1e-5).reshape(batch, -1, frames)
        return self.trunk(features.to(waveform.dtype))


class SpectralDecoder(nn.Module, Decoder):
    """Latent ``(batch, dim, frames)`` -> ConvNeXt blocks -> log magnitude + phase per STFT
    frame -> inverse STFT -> waveform ``(batch, channels, frames * hop_length)``.

    The latent is extended by one repeated frame at the end so the overlap-add covers exactly
    ``frames * hop_length`` samples. Magnitudes are ``exp`` of the prediction, clipped at
    ``max_log_magnitude`` to keep early training finite.
    """

    def __init__(self, channels: int = 1, dim: int = 128, hop_length: int = 64,
                 n_fft: int | None = None, width: int = 256, layers: int = 4,
                 kernel_size: int = 7, expansion: int = 3,
                 max_log_magnitude: float = 4.0) -> None:
        super().__init__()
        self.n_fft = _fft_size(channels, dim, hop_length, n_fft)
        self.channels, self.dim, self.hop_length = channels, dim, hop_length
        self.max_log_magnitude = float(max_log_magnitude)
        self.bins = self.n_fft // 2 + 1
        self.trunk = _Trunk(dim, channels * 2 * self.bins, width, layers, kernel_size, expansion)

    def forward(self, latent: Tensor) -> Tensor:
        if latent.dim() != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected a latent (batch, {self.dim}, frames), "
                             f"got shape {tuple(latent.shape)}")
        batch, _, frames = latent.shape
        out = self.trunk(F.pad(latent, (0, 1), mode="replicate")).float()
        out = out.reshape(batch, self.channels, 2, self.bins, frames + 1)
        magnitude = torch.exp(out[:, :, 0].clamp(max=self.max_log_magnitude))
        return self.synthesize(torch.polar(magnitude, out[:, :, 1])).to(latent.dtype)

    def synthesize(self, spec: Tensor) -> Tensor:
        """Complex STFT ``(batch, channels, bins, frames + 1)`` -> waveform ``(batch, channels,
        frames * hop_length)`` by windowed overlap-add (centred frames, like the encoder's)."""
        bins, steps = spec.shape[-2:]
        if bins != self.bins or steps < 2:
            raise ValueError(f"expected an STFT (batch, channels, {self.bins}, frames + 1), "
                             f"got shape {tuple(spec.shape)}")
        return istft(spec, self.n_fft, self.hop_length, center=True,
                     length=(steps - 1) * self.hop_length)
