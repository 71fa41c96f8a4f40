"""audio_core.audio.transforms: channels, pad/trim masks, peak and BS.1770 loudness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audio_core.audio.transforms import (
    integrated_loudness,
    k_weighting_coefficients,
    loudness_normalize,
    pad_or_trim,
    peak_normalize,
    to_channels,
)


def _sine(freq: float, sr: int, seconds: float, amp: float) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


# --------------------------------------------------------------------------- channels


def test_to_channels_downmix_and_upmix():
    stereo = torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, -3.0]])
    mono = to_channels(stereo, 1)
    assert mono.shape == (1, 3)
    assert mono.tolist() == [[2.0, 3.0, 0.0]]
    up = to_channels(mono, 2)
    assert up.shape == (2, 3)
    assert torch.equal(up[0], mono[0]) and torch.equal(up[1], mono[0])
    up[0, 0] = 99.0  # a real copy, not a broadcast view of the input
    assert mono[0, 0] == 2.0
    assert to_channels(stereo, 2) is stereo


def test_to_channels_batched_and_errors():
    x = torch.randn(4, 2, 50)
    assert to_channels(x, 1).shape == (4, 1, 50)
    torch.testing.assert_close(to_channels(x, 1)[:, 0], x.mean(dim=1))
    assert to_channels(torch.randn(4, 1, 50), 6).shape == (4, 6, 50)
    with pytest.raises(ValueError, match="6 channels to 2"):
        to_channels(torch.randn(6, 10), 2)
    with pytest.raises(ValueError, match="channels, time"):
        to_channels(torch.randn(10), 1)
    with pytest.raises(ValueError):
        to_channels(torch.randn(2, 10), 0)


# --------------------------------------------------------------------------- pad / trim


def test_pad_or_trim_trims_with_offset():
    x = torch.arange(10.0).repeat(2, 1)
    y, mask = pad_or_trim(x, 4, offset=3)
    assert y.shape == (2, 4) and y[0].tolist() == [3.0, 4.0, 5.0, 6.0]
    assert mask.dtype == torch.bool and mask.all()


def test_pad_or_trim_pads_and_masks():
    x = torch.arange(1.0, 6.0)  # 5 samples
    y, mask = pad_or_trim(x, 8)
    assert y.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0, 0.0]
    assert mask.tolist() == [True] * 5 + [False] * 3
    # offset near the end: the remaining real samples, then padding
    y, mask = pad_or_trim(x, 4, offset=3)
    assert y.tolist() == [4.0, 5.0, 0.0, 0.0] and mask.sum() == 2
    # offset past the end: all padding
    y, mask = pad_or_trim(x, 3, offset=9)
    assert y.tolist() == [0.0, 0.0, 0.0] and not mask.any()
    # exact length and zero length
    y, mask = pad_or_trim(x, 5)
    assert torch.equal(y, x) and mask.all()
    y, mask = pad_or_trim(x, 0)
    assert y.shape == (0,) and mask.shape == (0,)


def test_pad_or_trim_keeps_leading_dims_dtype_and_masks_real_samples():
    x = torch.randn(2, 3, 7, dtype=torch.float64)
    y, mask = pad_or_trim(x, 10, offset=2)
    assert y.shape == (2, 3, 10) and y.dtype == torch.float64 and mask.shape == (10,)
    torch.testing.assert_close(y[..., mask], x[..., 2:])
    assert (y[..., ~mask] == 0).all()


def test_pad_or_trim_rejects_negative():
    with pytest.raises(ValueError):
        pad_or_trim(torch.zeros(4), -1)
    with pytest.raises(ValueError):
        pad_or_trim(torch.zeros(4), 2, offset=-1)


# --------------------------------------------------------------------------- peak


@pytest.mark.parametrize("peak_db", [-1.0, 0.0, -12.5])
def test_peak_normalize_hits_target(peak_db):
    x = torch.randn(2, 1000) * 0.1
    x[1] *= 0.5
    y = peak_normalize(x, peak_db)
    assert math.isclose(float(y.abs().max()), 10 ** (peak_db / 20), rel_tol=1e-5)
    torch.testing.assert_close(y[1] / y[0], x[1] / x[0])  # one gain for all channels
    a = peak_normalize(x.numpy().astype(np.float64), peak_db)
    assert isinstance(a, np.ndarray) and a.dtype == np.float64
    assert math.isclose(float(np.abs(a).max()), 10 ** (peak_db / 20), rel_tol=1e-9)


def test_peak_normalize_silence_and_half():
    z = torch.zeros(2, 100)
    out = peak_normalize(z)
    assert torch.equal(out, z) and out is not z
    assert np.isfinite(peak_normalize(np.zeros(10))).all()
    h = peak_normalize(torch.randn(100).to(torch.bfloat16))
    assert h.dtype == torch.bfloat16
    assert abs(float(h.float().abs().max()) - 10 ** (-1 / 20)) < 1e-2
    with pytest.raises(ValueError):
        peak_normalize(torch.tensor([1.0, float("nan")]))


# --------------------------------------------------------------------------- loudness


def test_k_weighting_matches_bs1770_table_at_48k():
    sos = k_weighting_coefficients(48000)
    stage1 = [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0]
    stage1 += [-1.69065929318241, 0.73248077421585]
    stage2 = [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]
    np.testing.assert_allclose(sos, [stage1, stage2], atol=1e-10)


@pytest.mark.parametrize("sr", [48000, 44100])
def test_reference_sine_loudness(sr):
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LKFS.
    tone = _sine(997.0, sr, 3.0, 1.0)
    assert abs(integrated_loudness(tone, sr) - (-3.01)) < 0.02
    # -20 dBFS in both channels of a stereo pair: -23.01 + 3.01
    stereo = np.stack([tone, tone]) * 0.1
    assert abs(integrated_loudness(stereo, sr) - (-20.0)) < 0.02


def test_gating_ignores_silence():
    sr = 16000
    tone = _sine(997.0, sr, 2.0, 0.1)
    padded = np.concatenate([np.zeros(2 * sr), tone, np.zeros(4 * sr)])
    # Ungated, the 6 s of silence would pull the reading down by 10*log10(8/2) = 6 dB. Gated,
    # only the 17 full blocks plus 6 blocks straddling the tone's edges (filled 1/4, 1/2, 3/4 on
    # each side, all above the relative gate) count: 20 blocks' energy over 23 blocks.
    expected = integrated_loudness(tone, sr) + 10 * math.log10(20 / 23)
    assert abs(integrated_loudness(padded, sr) - expected) < 0.02


@pytest.mark.parametrize("target", [-23.0, -16.0])
@pytest.mark.parametrize("kind", ["noise", "sine"])
def test_loudness_normalize_hits_target(kind, target):
    sr = 44100
    rng = np.random.default_rng(0)
    if kind == "noise":
        x = 0.05 * rng.standard_normal((2, 2 * sr))
    else:
        x = _sine(440.0, sr, 2.0, 0.3)[None]
    xt = torch.tensor(x, dtype=torch.float32)
    y = loudness_normalize(xt, sr, target)
    assert y.dtype == torch.float32 and y.shape == xt.shape
    assert abs(integrated_loudness(y, sr) - target) < 0.5
    ya = loudness_normalize(x, sr, target)
    assert isinstance(ya, np.ndarray) and abs(integrated_loudness(ya, sr) - target) < 0.5


def test_loudness_normalize_batched_items_independent():
    sr = 16000
    x = torch.randn(3, 2, sr) * torch.tensor([0.01, 0.1, 0.5])[:, None, None]
    y = loudness_normalize(x, sr, -20.0)
    lufs = integrated_loudness(y, sr)
    assert lufs.shape == (3,)
    np.testing.assert_allclose(lufs, -20.0, atol=0.05)


def test_loudness_silence_and_short_input():
    sr = 16000
    silent = torch.zeros(2, sr)
    assert integrated_loudness(silent, sr) == -math.inf
    out = loudness_normalize(silent, sr)
    assert torch.isfinite(out).all() and torch.equal(out, silent)
    short = torch.randn(1, 1000) * 0.1  # 62 ms: shorter than one 400 ms block
    y = loudness_normalize(short, sr, -23.0)
    assert torch.isfinite(y).all()
    assert abs(integrated_loudness(y, sr) + 23.0) < 0.5
    assert np.isfinite(loudness_normalize(np.zeros(0), sr)).all()
