"""audio_core.audio.resample: frequency/level preservation, round trips, types and devices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_core.audio.resample import QUALITIES, resample, resampled_length

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _sine(freq: float, sr: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _rms_db(x: np.ndarray, trim: int) -> float:
    """RMS level in dB, ignoring ``trim`` samples at each edge (filter transients)."""
    core = x[trim:-trim]
    return 20 * np.log10(np.sqrt(np.mean(core.astype(np.float64) ** 2)))


@pytest.mark.parametrize("freq", [1000.0, 5000.0])
def test_downsample_sine_keeps_frequency_and_level(freq):
    x = _sine(freq, 44100)
    y = resample(x, 44100, 16000)
    assert y.shape == (16000,) and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    bin_hz = 16000 / len(y)
    assert abs(np.argmax(spectrum) * bin_hz - freq) <= bin_hz
    assert abs(_rms_db(y, 800) - _rms_db(x, 2205)) < 0.1


def test_downsample_rejects_aliases():
    # 10 kHz is above the 8 kHz Nyquist of 16 kHz: it must be filtered, not folded to 6 kHz.
    y = resample(_sine(10000.0, 44100), 44100, 16000)
    assert _rms_db(y, 800) < _rms_db(_sine(10000.0, 44100), 2205) - 60


def test_round_trip_16k_48k_16k():
    sr = 16000
    t = np.arange(sr) / sr
    x = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t + 1.0)).astype(
        np.float32
    )
    up = resample(x, sr, 48000)
    assert up.shape == (48000,)
    back = resample(up, 48000, sr)
    assert back.shape == x.shape
    assert np.abs(back - x)[200:-200].max() < 1e-4  # edges carry filter transients
    assert np.abs(back - x).max() < 0.1


def test_equal_rates_are_identity():
    x = torch.randn(2, 100)
    assert resample(x, 16000, 16000) is x
    a = np.zeros(10)
    assert resample(a, 8000, 8000) is a


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_tensor_dtype_and_shape_preserved(dtype):
    x = torch.randn(2, 3, 4410).to(dtype)
    y = resample(x, 44100, 16000)
    assert isinstance(y, torch.Tensor)
    assert y.dtype == dtype and y.shape == (2, 3, 1600)


def test_numpy_dtypes():
    assert resample(np.zeros(441, np.float64), 44100, 16000).dtype == np.float64
    assert resample(np.zeros(441, np.float16), 44100, 16000).dtype == np.float16
    out = resample(np.zeros(441, np.int16), 44100, 16000)
    assert out.dtype == np.float32 and out.shape == (160,)
    assert resample(torch.zeros(441, dtype=torch.int16), 44100, 16000).dtype == torch.float32


def test_batched_equals_per_channel_and_non_contiguous():
    x = torch.randn(4410, 6).T  # non-contiguous (6, 4410)
    y = resample(x, 44100, 22050)
    for c in range(6):
        torch.testing.assert_close(y[c], resample(x[c].contiguous(), 44100, 22050))
    folded = resample(x.reshape(2, 3, 4410), 44100, 22050)
    torch.testing.assert_close(folded, y.reshape(2, 3, -1))


@pytest.mark.parametrize("device", DEVICES)
def test_device_preserved(device):
    x = torch.randn(2, 1000, device=device)
    y = resample(x, 16000, 24000)
    assert y.device == x.device and y.shape == (2, 1500)


@pytest.mark.parametrize("n", [0, 1, 7, 1000, 44101])
def test_resampled_length_matches(n):
    out = resample(np.zeros(n, np.float32), 44100, 16000)
    assert out.shape == (resampled_length(n, 44100, 16000),)
    assert resample(torch.zeros(3, 0), 16000, 8000).shape == (3, 0)


@pytest.mark.parametrize("quality", [*QUALITIES, "hq"])
def test_all_qualities_work(quality):
    y = resample(_sine(1000.0, 48000, 0.2), 48000, 16000, quality=quality)
    assert y.shape == (3200,) and np.isfinite(y).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="quality"):
        resample(np.zeros(10), 16000, 8000, quality="best")
    with pytest.raises(ValueError, match="orig_sr"):
        resample(np.zeros(10), 0, 8000)
    with pytest.raises(ValueError, match="target_sr"):
        resample(np.zeros(10), 16000, 22050.5)
    with pytest.raises(TypeError):
        resample([0.0, 1.0], 16000, 8000)
