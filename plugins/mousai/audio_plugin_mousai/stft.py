"""Magnitude spectrogram in torch (no torchaudio), on a frame grid of ``hop_length`` samples."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.audio.dsp.real_stft import onnx_tracing, stft_parts
from audio_core.precision import float32_region


class MagnitudeSpectrogram(nn.Module):
    """Waveform ``(batch, channels, time)`` -> magnitude ``(batch, channels * bins,
    ceil(time / hop_length))`` with ``bins = n_fft // 2 + 1``, each channel's bins stacked.

    Frame ``k`` is the Hann-windowed FFT centred on samples ``[k * hop, (k + 1) * hop)`` (zero
    padding at both ends), so the frame grid is the waveform's grid divided by ``hop_length``.
    ``log=True`` compresses with ``log(1 + magnitude)``. Computed in fp32.
    """

    def __init__(self, n_fft: int = 1024, hop_length: int = 256, log: bool = True) -> None:
        super().__init__()
        if n_fft < 2 or hop_length < 1 or hop_length > n_fft:
            raise ValueError(f"need n_fft >= 2 and 1 <= hop_length <= n_fft, got n_fft={n_fft}, "
                             f"hop_length={hop_length}")
        self.n_fft, self.hop_length, self.log = int(n_fft), int(hop_length), bool(log)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @float32_region  # autocast off: the STFT of a bf16/fp16 model still runs in float32
    def forward(self, waveform: Tensor) -> Tensor:
        batch, channels, time = waveform.shape
        frames = (time + self.hop_length - 1) // self.hop_length  # tensor ops when traced
        left = (self.n_fft - self.hop_length) // 2
        right = (frames - 1) * self.hop_length + self.n_fft - time - left
        x = F.pad(waveform.float().reshape(batch * channels, time), (left, right))
        if onnx_tracing():  # ONNX has no complex STFT: the same transform on real parts
            real, imag = stft_parts(x, self.n_fft, self.hop_length, window=self.window.float(),
                                    center=False)
            spec = torch.sqrt(real * real + imag * imag)
        else:
            spec = torch.stft(x, self.n_fft, self.hop_length, window=self.window.float(),
                              center=False, return_complex=True).abs()
        if self.log:
            spec = torch.log1p(spec)
        return spec.reshape(batch, channels * self.bins, spec.shape[-1])
