"""Multi-resolution spectral reconstruction losses. Always computed in float32: each
``forward`` is a :func:`~audio_core.precision.float32_region` (autocast off, inputs cast)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from audio_core.audio.dsp import MelSpectrogram, stft
from audio_core.contracts.components import Loss
from audio_core.contracts.records import LossOutput
from audio_core.precision import float32_region


def _masked(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the padding of ``x`` ``(batch, channels, time)`` (``mask`` ``(batch, time)``)."""
    return x if mask is None else x * mask[:, None, :].to(x.dtype)


class MultiResolutionSTFTLoss(nn.Module, Loss):
    """Spectral convergence + L1 of log magnitudes, averaged over STFT resolutions.

    Inputs are waveforms ``(batch, channels, time)``; each resolution ``n_fft`` uses hop
    ``n_fft // 4``. Returns the mean over resolutions of ``sc + log_mag``.
    """

    name = "mrstft"

    def __init__(self, n_ffts: Sequence[int] = (256, 512, 1024), eps: float = 1e-5) -> None:
        super().__init__()
        self.n_ffts, self.eps = tuple(n_ffts), eps

    @float32_region
    def forward(self, estimate: Tensor, reference: Tensor,
                mask: Tensor | None = None) -> LossOutput:
        est, ref = _masked(estimate.float(), mask), _masked(reference.float(), mask)
        sc_total = est.new_zeros(())
        mag_total = est.new_zeros(())
        for n_fft in self.n_ffts:
            e = stft(est, n_fft=n_fft, hop_length=n_fft // 4).abs()
            r = stft(ref, n_fft=n_fft, hop_length=n_fft // 4).abs()
            sc_total = sc_total + torch.linalg.norm(r - e) / torch.linalg.norm(r).clamp_min(
                self.eps)
            mag_total = mag_total + (e.clamp_min(self.eps).log()
                                     - r.clamp_min(self.eps).log()).abs().mean()
        n = len(self.n_ffts)
        sc, mag = sc_total / n, mag_total / n
        return LossOutput(sc + mag, {"sc": sc.detach(), "log_mag": mag.detach()})


class MultiResolutionMelLoss(nn.Module, Loss):
    """L1 between log-mel spectrograms ``log10(max(mel, eps))`` over several resolutions.

    Waveforms ``(batch, channels, time)`` at ``sample_rate``; ``n_mels[i]`` bands for
    ``n_ffts[i]`` with hop ``n_fft // 4``.
    """

    name = "mel"

    def __init__(self, sample_rate: int, n_ffts: Sequence[int] = (512, 1024, 2048),
                 n_mels: Sequence[int] = (32, 64, 128), eps: float = 1e-5) -> None:
        super().__init__()
        if len(n_ffts) != len(n_mels):
            raise ValueError(f"n_ffts and n_mels need the same length, got {list(n_ffts)} "
                             f"and {list(n_mels)}")
        self.eps = eps
        self.mels = nn.ModuleList(
            MelSpectrogram(sample_rate, n_fft=f, hop_length=f // 4, n_mels=m, power=1.0)
            for f, m in zip(n_ffts, n_mels, strict=True))

    @float32_region
    def forward(self, estimate: Tensor, reference: Tensor,
                mask: Tensor | None = None) -> LossOutput:
        est, ref = _masked(estimate.float(), mask), _masked(reference.float(), mask)
        total = est.new_zeros(())
        for mel in self.mels:
            total = total + (mel(est).clamp_min(self.eps).log10()
                             - mel(ref).clamp_min(self.eps).log10()).abs().mean()
        return LossOutput(total / len(self.mels))
