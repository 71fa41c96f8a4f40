"""Log-mel distances between waveforms (the usual codec validation metric), batched.

Built on :mod:`audio_core.audio.dsp` (librosa-compatible STFT and Slaney mel filters) and
computed in float32 even for bf16/fp16 input or inside autocast.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from audio_core.audio.dsp import mel_filterbank, stft
from audio_core.audio.dsp._common import no_autocast
from audio_core.metrics._common import prepare


def _log_mel(x: Tensor, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
             fmin: float, fmax: float | None, power: float, clamp_eps: float) -> Tensor:
    """(..., time) -> log10 mel (..., n_mels, frames) of ``|STFT| ** power``."""
    spec = stft(x, n_fft, hop_length, window="hann", center=True).abs()
    if power != 1.0:
        spec = spec.pow(power)
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, device=x.device,
                        dtype=spec.dtype)
    return torch.log10(torch.matmul(fb, spec).clamp(min=clamp_eps))


def _frame_weights(mask: Tensor, hop_length: int, frames: int) -> Tensor:
    """Sample mask (batch, 1, time) -> weights (batch, 1, 1, frames): frame centre is valid."""
    centres = (torch.arange(frames, device=mask.device) * hop_length).clamp(max=mask.shape[-1] - 1)
    return mask[..., centres].unsqueeze(-2)


def mel_distance(
    estimate: Tensor,
    reference: Tensor,
    sample_rate: int,
    *,
    n_fft: int = 1024,
    hop_length: int | None = None,
    n_mels: int = 64,
    fmin: float = 0.0,
    fmax: float | None = None,
    power: float = 1.0,
    clamp_eps: float = 1e-5,
    mask: Tensor | None = None,
) -> Tensor:
    """Mean L1 distance between log10 mel spectrograms at one resolution, Tensor[batch].

    Signals are (batch, time) or (batch, channels, time). For each signal: centred STFT
    (Hann window of ``n_fft``, hop ``hop_length``, default ``n_fft // 4``), magnitude raised to
    ``power``, ``n_mels`` Slaney mel filters over [fmin, fmax], then ``log10(max(mel,
    clamp_eps))``. The result is ``mean |logmel(est) - logmel(ref)|`` over channels, mel bands
    and frames. With a bool ``mask`` (batch, time) padded samples are zeroed in both signals
    and only frames whose centre sample is valid are averaged. Symmetric; 0 for equal inputs.
    """
    est, ref, m = prepare(estimate, reference, mask)
    hop = hop_length or n_fft // 4
    with no_autocast(est.device):
        if m is not None:
            est, ref = est * m, ref * m
        both = _log_mel(torch.cat([est, ref]), sample_rate, n_fft, hop, n_mels, fmin, fmax,
                        power, clamp_eps)
        diff = (both[: est.shape[0]] - both[est.shape[0]:]).abs()  # (batch, ch, mels, frames)
        if m is None:
            return diff.mean(dim=(1, 2, 3))
        weights = _frame_weights(m, hop, diff.shape[-1])
        count = weights.sum(dim=(1, 2, 3)) * diff.shape[1] * diff.shape[2]
        return (diff * weights).sum(dim=(1, 2, 3)) / count.clamp(min=1.0)


def multi_resolution_mel_distance(
    estimate: Tensor,
    reference: Tensor,
    sample_rate: int,
    *,
    n_ffts: Sequence[int] = (512, 1024, 2048),
    n_mels: Sequence[int] = (32, 64, 128),
    hop_ratio: float = 0.25,
    fmin: float = 0.0,
    fmax: float | None = None,
    power: float = 1.0,
    clamp_eps: float = 1e-5,
    mask: Tensor | None = None,
) -> Tensor:
    """Multi-resolution log-mel L1 distance, Tensor[batch].

    The unweighted mean over resolutions ``i`` of :func:`mel_distance` with ``n_fft=n_ffts[i]``,
    ``n_mels=n_mels[i]`` and ``hop_length=int(n_ffts[i] * hop_ratio)``; i.e. the mean absolute
    difference of ``log10(max(mel(|STFT|**power), clamp_eps))`` per resolution, averaged.
    Signals are (batch, time) or (batch, channels, time); ``mask`` is bool (batch, time).
    """
    if len(n_ffts) != len(n_mels) or not n_ffts:
        raise ValueError(f"n_ffts {tuple(n_ffts)} and n_mels {tuple(n_mels)} must be non-empty "
                         "and of equal length")
    if not 0.0 < hop_ratio <= 1.0:
        raise ValueError(f"hop_ratio must be in (0, 1], got {hop_ratio}")
    parts = [
        mel_distance(estimate, reference, sample_rate, n_fft=n_fft, n_mels=mels,
                     hop_length=max(1, int(n_fft * hop_ratio)), fmin=fmin, fmax=fmax,
                     power=power, clamp_eps=clamp_eps, mask=mask)
        for n_fft, mels in zip(n_ffts, n_mels, strict=True)
    ]
    return torch.stack(parts).mean(dim=0)


def stft_distance(
    estimate: Tensor,
    reference: Tensor,
    *,
    n_fft: int = 1024,
    hop_length: int | None = None,
    eps: float = 1e-7,
) -> Tensor:
    """Spectral convergence plus log-magnitude L1 at one STFT resolution, Tensor[batch].

    With ``X = |STFT(estimate)|``, ``Y = |STFT(reference)|`` (centred, Hann window of
    ``n_fft``, hop ``hop_length``, default ``n_fft // 4``) per channel:
    ``||Y - X||_F / ||Y||_F + mean |log10(Y + eps) - log10(X + eps)|``, averaged over
    channels. 0 for equal inputs; the usual codec training loss, used as a metric.
    """
    est, ref, _ = prepare(estimate, reference)
    hop = hop_length or n_fft // 4
    with no_autocast(est.device):
        mags = stft(torch.cat([est, ref]), n_fft, hop, window="hann", center=True).abs()
        x, y = mags[: est.shape[0]], mags[est.shape[0]:]  # (batch, ch, bins, frames)
        convergence = (y - x).square().sum(dim=(-2, -1)).sqrt() / y.square().sum(
            dim=(-2, -1)).sqrt().clamp(min=eps)
        log_l1 = (torch.log10(y + eps) - torch.log10(x + eps)).abs().mean(dim=(-2, -1))
        return (convergence + log_l1).mean(dim=1)


def multi_resolution_stft_distance(
    estimate: Tensor,
    reference: Tensor,
    *,
    n_ffts: Sequence[int] = (512, 1024, 2048),
    hop_ratio: float = 0.25,
    eps: float = 1e-7,
) -> Tensor:
    """Mean over ``n_ffts`` of :func:`stft_distance` (hop ``int(n_fft * hop_ratio)``),
    Tensor[batch]."""
    if not n_ffts or not 0.0 < hop_ratio <= 1.0:
        raise ValueError(f"need at least one n_fft and hop_ratio in (0, 1], got n_ffts="
                         f"{tuple(n_ffts)}, hop_ratio={hop_ratio}")
    return torch.stack([stft_distance(estimate, reference, n_fft=n,
                                      hop_length=max(1, int(n * hop_ratio)), eps=eps)
                        for n in n_ffts]).mean(dim=0)
