"""``mousai.magnitude``: the diffusion autoencoder's encoder.

Waveform ``(batch, channels, time)`` -> magnitude spectrogram (every channel's ``n_fft // 2 +
1`` bins stacked as input channels, one frame per ``stft_hop`` samples) -> a 1-D conv
encoder (an input conv, then per level ``blocks`` resnet blocks and a strided downsampling
conv by ``factors[i]``) -> a 1x1 conv to ``latent_dim`` channels -> tanh. One latent frame
per ``hop_length = stft_hop * prod(factors)`` samples; the latent lies in (-1, 1).

Compression: ``channels * hop_length / latent_dim`` waveform values per latent value (the
Moûsai setting, stereo, hop 1024, 32 channels: 64x).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.contracts.components import Encoder
from audio_plugin_mousai.blocks import ResnetBlock, downsample, norm
from audio_plugin_mousai.stft import MagnitudeSpectrogram


class MagnitudeEncoder(nn.Module, Encoder):
    """See the module docstring. ``widths`` has one entry per level plus one: ``widths[0]`` is
    the input conv's width, ``widths[i + 1]`` the width after downsampling ``i``."""

    def __init__(self, channels: int = 2, n_fft: int = 1024, stft_hop: int = 256,
                 widths: Sequence[int] = (512, 512, 512), factors: Sequence[int] = (2, 2),
                 blocks: int = 2, latent_dim: int = 32, groups: int = 8,
                 log: bool = True) -> None:
        super().__init__()
        if len(widths) != len(factors) + 1 or min(*widths, *factors, latent_dim, channels) < 1 \
                or blocks < 0:
            raise ValueError(f"mousai.magnitude needs len(widths) == len(factors) + 1, widths, "
                             f"factors, latent_dim, channels >= 1 and blocks >= 0; got "
                             f"widths={list(widths)}, factors={list(factors)}, "
                             f"latent_dim={latent_dim}, channels={channels}, blocks={blocks}")
        self.channels, self.latent_dim = int(channels), int(latent_dim)
        self.spectrogram = MagnitudeSpectrogram(n_fft, stft_hop, log)
        self.hop_length = int(stft_hop * math.prod(factors))
        self.inp = nn.Conv1d(channels * self.spectrogram.bins, widths[0], 3, padding=1)
        layers: list[nn.Module] = []
        for i, factor in enumerate(factors):
            layers += [ResnetBlock(widths[i], groups=groups) for _ in range(blocks)]
            layers.append(downsample(widths[i], widths[i + 1], factor))
        layers += [ResnetBlock(widths[-1], groups=groups) for _ in range(blocks)]
        self.body = nn.Sequential(*layers)
        self.out_norm = norm(widths[-1], groups)
        self.out = nn.Conv1d(widths[-1], latent_dim, 1)

    @property
    def dim(self) -> int:
        """Latent channels (``latent_dim``), as the encoder contract names them."""
        return self.latent_dim

    @property
    def compression(self) -> float:
        """Waveform values per latent value: ``channels * hop_length / latent_dim``."""
        return self.channels * self.hop_length / self.latent_dim

    def forward(self, waveform: Tensor) -> Tensor:
        """``(batch, channels, time)`` -> ``(batch, latent_dim, ceil(time / hop_length))`` in
        (-1, 1); the waveform is zero-padded to a multiple of ``hop_length``."""
        if waveform.ndim != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"mousai.magnitude expects (batch, {self.channels}, time), got "
                             f"{tuple(waveform.shape)}")
        pad = (self.hop_length - waveform.shape[-1] % self.hop_length) % self.hop_length
        spec = self.spectrogram(F.pad(waveform, (0, pad)))
        h = self.body(self.inp(spec.to(self.inp.weight.dtype)))
        return self.out(F.silu(self.out_norm(h))).tanh()
