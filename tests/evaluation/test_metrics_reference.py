"""Every evaluation metric against a reference implementation on fixed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audio_core.metrics import speech
from audio_core.metrics.spectral import (
    mel_distance,
    multi_resolution_stft_distance,
    stft_distance,
)
from audio_core.metrics.waveform import si_sdr

RATE = 16000


def tone_and_noise(seconds: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    clean = 0.5 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return clean, clean + 0.05 * rng.standard_normal(clean.shape)


def test_si_sdr_closed_form():
    ref = np.array([1.0, -2.0, 3.0, -1.0, 0.5])
    noise = np.array([0.1, 0.2, -0.1, 0.0, 0.3])
    est = 2.0 * ref + noise
    r, e = ref - ref.mean(), est - est.mean()
    target = (e @ r) / (r @ r) * r
    expected = 10 * math.log10((target @ target) / ((e - target) @ (e - target)))
    got = si_sdr(torch.tensor(est)[None], torch.tensor(ref)[None], eps=0.0)
    assert float(got) == pytest.approx(expected, abs=1e-9)


def _log_mel_reference(x: np.ndarray, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    spec = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=n_fft // 4, window="hann",
                               center=True, pad_mode="constant"))
    fb = librosa.filters.mel(sr=RATE, n_fft=n_fft, n_mels=n_mels, norm="slaney", htk=False)
    return np.log10(np.maximum(fb @ spec, 1e-5))


def test_mel_distance_matches_librosa_closed_form():
    clean, noisy = tone_and_noise()
    expected = np.abs(_log_mel_reference(noisy, 1024, 64)
                      - _log_mel_reference(clean, 1024, 64)).mean()
    got = mel_distance(torch.tensor(noisy)[None], torch.tensor(clean)[None], RATE,
                       n_fft=1024, n_mels=64)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_stft_distance_closed_form():
    import librosa

    clean, noisy = tone_and_noise(seed=1)
    x = np.abs(librosa.stft(noisy, n_fft=512, hop_length=128, center=True,
                            pad_mode="constant"))
    y = np.abs(librosa.stft(clean, n_fft=512, hop_length=128, center=True,
                            pad_mode="constant"))
    expected = (np.linalg.norm(y - x) / np.linalg.norm(y)
                + np.abs(np.log10(y + 1e-7) - np.log10(x + 1e-7)).mean())
    got = stft_distance(torch.tensor(noisy)[None], torch.tensor(clean)[None], n_fft=512)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    both = multi_resolution_stft_distance(torch.tensor(noisy)[None], torch.tensor(clean)[None],
                                          n_ffts=(512, 1024))
    other = stft_distance(torch.tensor(noisy)[None], torch.tensor(clean)[None], n_fft=1024)
    assert float(both) == pytest.approx((expected + float(other)) / 2, rel=1e-6)
    assert float(stft_distance(torch.tensor(clean)[None], torch.tensor(clean)[None])) == 0.0


def test_pesq_and_stoi_equal_the_reference_packages():
    pesq = pytest.importorskip("pesq", reason="audio-core[eval] not installed")
    pystoi = pytest.importorskip("pystoi", reason="audio-core[eval] not installed")
    clean, noisy = tone_and_noise(seconds=2.0, seed=2)
    assert speech.pesq_wb(noisy, clean, RATE) == pytest.approx(
        pesq.pesq(RATE, clean, noisy, "wb"), abs=1e-9)
    assert speech.stoi(noisy, clean, RATE) == pytest.approx(
        pystoi.stoi(clean, noisy, RATE), abs=1e-9)
    # another rate: resampled to 16 kHz for PESQ, passed through for STOI
    clean_22k = np.asarray(torch.from_numpy(clean))
    assert speech.stoi(torch.tensor(noisy), torch.tensor(clean_22k), RATE) == pytest.approx(
        pystoi.stoi(clean, noisy, RATE), abs=1e-9)


def test_dnsmos_scores_are_in_range_and_favour_clean_speech(speech_clip):
    pytest.importorskip("speechmos", reason="audio-core[eval] not installed")
    audio, rate = speech_clip
    clean = speech.dnsmos(audio, rate)
    noisy = speech.dnsmos(audio + 0.1 * torch.randn_like(audio), rate)
    assert set(clean) == {"dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"}
    assert all(1.0 <= v <= 5.0 for v in clean.values())
    assert clean["dnsmos_bak"] > noisy["dnsmos_bak"]


def test_missing_package_is_a_clear_error(monkeypatch):
    import sys

    from audio_core.errors import MissingPackageError

    monkeypatch.setitem(sys.modules, "pesq", None)  # import fails as if not installed
    clean, noisy = tone_and_noise()
    with pytest.raises(MissingPackageError, match=r"PESQ needs the 'pesq' package.*"
                                                  r"audio-core\[eval\]"):
        speech.pesq_wb(noisy, clean, RATE)
