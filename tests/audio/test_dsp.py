"""audio_core.audio.dsp against librosa, plus round-trip, batching, precision and GL checks."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from audio_core.audio import dsp

SR = 22050
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _random_signal(n: int = SR, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _realish_signal(n: int = SR, seed: int = 1) -> np.ndarray:
    """Decaying harmonic tone with vibrato, a chirp and a little noise."""
    t = np.arange(n) / SR
    f0 = 220.0 * (1.0 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    tone = sum(0.5 / k * np.sin(k * phase) for k in range(1, 8)) * np.exp(-2 * t)
    chirp = 0.1 * np.sin(2 * np.pi * (200 * t + 2000 * t**2))
    noise = 0.01 * np.random.default_rng(seed).standard_normal(n)
    return (tone + chirp + noise).astype(np.float32)


SIGNALS = {"random": _random_signal(), "realish": _realish_signal()}


def assert_rel_close(a, b, tol: float = 1e-4, floor: float = 1e-3) -> None:
    """max|a-b| / max|b| <= tol, and elementwise |a-b|/|b| <= tol where |b| > floor*max|b|."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = np.abs(b).max()
    assert np.abs(a - b).max() / scale <= tol
    big = np.abs(b) > floor * scale
    assert big.any()
    assert (np.abs(a - b)[big] / np.abs(b)[big]).max() <= tol


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


# --------------------------------------------------------------------------- STFT


@pytest.mark.parametrize("name", sorted(SIGNALS))
@pytest.mark.parametrize(
    ("n_fft", "hop", "win"), [(2048, None, None), (1024, 256, None), (512, 100, 400)]
)
def test_stft_matches_librosa(name, n_fft, hop, win):
    x = SIGNALS[name]
    ours = dsp.stft(_t(x), n_fft, hop, win)
    ref = librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win)
    assert ours.dtype == torch.complex64
    assert_rel_close(ours.abs().numpy(), np.abs(ref))
    # complex values too (same phase convention), relative to the largest bin
    assert np.abs(ours.numpy() - ref).max() / np.abs(ref).max() <= 1e-4


@pytest.mark.parametrize("pad_mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("center", [True, False])
def test_stft_padding_modes_match_librosa(pad_mode, center):
    x = SIGNALS["realish"][:5000]
    ours = dsp.stft(_t(x), 512, 128, center=center, pad_mode=pad_mode).abs().numpy()
    ref = np.abs(librosa.stft(x, n_fft=512, hop_length=128, center=center, pad_mode=pad_mode))
    assert_rel_close(ours, ref)


@pytest.mark.parametrize("window", ["hamming", ("kaiser", 8.0), "blackman"])
def test_stft_other_windows_match_librosa(window):
    x = SIGNALS["random"][:6000]
    ours = dsp.stft(_t(x), 512, 128, window=window).abs().numpy()
    ref = np.abs(librosa.stft(x, n_fft=512, hop_length=128, window=window))
    assert_rel_close(ours, ref)
    w = dsp.get_window(window, 400)
    np.testing.assert_allclose(w.numpy(), librosa.filters.get_window(window, 400), atol=1e-7)


def test_stft_frame_count_and_float64():
    x = torch.randn(3, 1000, dtype=torch.float64)
    spec = dsp.stft(x, 256, 64)
    assert spec.shape == (3, 129, 1 + 1000 // 64)
    assert spec.dtype == torch.complex128
    assert dsp.stft(x, 256, 64, center=False).shape[-1] == 1 + (1000 - 256) // 64


def test_stft_rejects_bad_input():
    with pytest.raises(TypeError):
        dsp.stft(torch.randn(100, dtype=torch.complex64), 64, 16)
    with pytest.raises(ValueError, match="pad_mode"):
        dsp.stft(torch.randn(100), 64, 16, pad_mode="bogus")
    with pytest.raises(ValueError, match="win_length"):
        dsp.stft(torch.randn(100), 64, 16, win_length=128)
    with pytest.raises(ValueError, match="shorter than n_fft"):
        dsp.stft(torch.randn(10), 64, 16, center=False)
    with pytest.raises(ValueError, match=r"\(\.\.\., 33, frames\)"):
        dsp.istft(torch.zeros(2, 10, 5, dtype=torch.complex64), 64, 16)


@pytest.mark.parametrize(
    ("n_fft", "hop", "win"), [(1024, 256, None), (512, 128, 400), (256, 32, None)]
)
def test_istft_reconstructs(n_fft, hop, win):
    x = _t(SIGNALS["realish"][:8000])
    spec = dsp.stft(x, n_fft, hop, win)
    y = dsp.istft(spec, n_fft, hop, win, length=x.shape[-1])
    assert y.shape == x.shape and y.dtype == torch.float32
    assert (y - x).abs().max() < 1e-5
    # librosa agrees on the inverse as well
    ref = librosa.istft(spec.numpy(), n_fft=n_fft, hop_length=hop, win_length=win, length=8000)
    assert np.abs(y.numpy() - ref).max() < 1e-5


def test_batched_equals_per_item():
    x = torch.randn(2, 3, 4000)
    spec = dsp.stft(x, 512, 128)
    assert spec.shape == (2, 3, 257, 32)
    mel = dsp.MelSpectrogram(16000, n_fft=512, hop_length=128, n_mels=40, log="db", top_db=60)
    mels = mel(x)
    assert mels.shape == (2, 3, 40, 32)
    wave = dsp.istft(spec, 512, 128, length=4000)
    for i in range(2):
        for c in range(3):
            torch.testing.assert_close(spec[i, c], dsp.stft(x[i, c], 512, 128))
            torch.testing.assert_close(mels[i, c], mel(x[i, c]))
            torch.testing.assert_close(wave[i, c], dsp.istft(spec[i, c], 512, 128, length=4000))


@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
def test_half_precision_input_computes_in_float32(half):
    x = _t(SIGNALS["realish"][:8000])
    xh = x.to(half)
    spec = dsp.stft(xh, 512, 128)
    assert spec.dtype == torch.complex64
    # exactly the float32 computation on the rounded samples ...
    torch.testing.assert_close(spec, dsp.stft(xh.float(), 512, 128))
    # ... and close to the full-precision result (bf16 keeps ~3 significant digits)
    mel = dsp.MelSpectrogram(SR, n_fft=512, hop_length=128, n_mels=64)
    out, ref = mel(xh), mel(x)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() / ref.abs().max() < 2e-2
    y = dsp.istft(spec, 512, 128, length=8000)
    assert y.dtype == torch.float32


def test_autocast_does_not_lower_precision():
    x = torch.randn(4000)
    mel = dsp.MelSpectrogram(16000, n_fft=512, hop_length=128, n_mels=40)
    ref = mel(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mel(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


# --------------------------------------------------------------------------- mel / dB


@pytest.mark.parametrize(
    ("n_mels", "fmin", "fmax", "htk", "norm"),
    [
        (128, 0.0, None, False, "slaney"),
        (80, 30.0, 8000.0, True, None),
        (40, 0.0, 4000.0, False, 1.0),
    ],
)
def test_mel_filterbank_matches_librosa(n_mels, fmin, fmax, htk, norm):
    fb = dsp.mel_filterbank(SR, 1024, n_mels, fmin, fmax, htk, norm)
    ref = librosa.filters.mel(
        sr=SR, n_fft=1024, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm
    )
    assert fb.shape == (n_mels, 513) and fb.dtype == torch.float32
    np.testing.assert_allclose(fb.numpy(), ref, rtol=1e-6, atol=1e-9)


def test_mel_filterbank_cache_is_not_shared_mutably():
    fb = dsp.mel_filterbank(16000, 512, 40)
    fb.zero_()
    assert dsp.mel_filterbank(16000, 512, 40).abs().sum() > 0


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_melspectrogram_matches_librosa_defaults(name):
    x = SIGNALS[name]
    ours = dsp.MelSpectrogram(SR)(_t(x)).numpy()
    ref = librosa.feature.melspectrogram(y=x, sr=SR)
    assert_rel_close(ours, ref)


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_melspectrogram_matches_librosa_custom(name):
    x = SIGNALS[name]
    kw = dict(n_fft=1024, hop_length=256, win_length=800, n_mels=80, fmin=20.0, fmax=8000.0)
    ours = dsp.MelSpectrogram(SR, power=1.0, **kw)(_t(x)).numpy()
    ref = librosa.feature.melspectrogram(y=x, sr=SR, power=1.0, **kw)
    assert_rel_close(ours, ref)


def test_power_and_amplitude_to_db_match_librosa():
    s = librosa.feature.melspectrogram(y=SIGNALS["realish"], sr=SR)
    st = _t(s)
    cases = [
        (dict(), dict()),
        (dict(ref="max"), dict(ref=np.max)),
        (dict(top_db=None, amin=1e-8), dict(top_db=None, amin=1e-8)),
        (dict(ref=0.5, top_db=40.0), dict(ref=0.5, top_db=40.0)),
    ]
    for ours_kw, ref_kw in cases:
        np.testing.assert_allclose(
            dsp.power_to_db(st, **ours_kw).numpy(), librosa.power_to_db(s, **ref_kw), atol=1e-4
        )
        mag = np.sqrt(s)
        np.testing.assert_allclose(
            dsp.amplitude_to_db(_t(mag), **ours_kw).numpy(),
            librosa.amplitude_to_db(mag, **ref_kw),
            atol=1e-4,
        )


def test_db_helpers():
    s = torch.rand(2, 10, 20) + 1e-3
    db = dsp.power_to_db(s, top_db=None)
    torch.testing.assert_close(dsp.db_to_power(db), s)
    torch.testing.assert_close(dsp.db_to_amplitude(dsp.amplitude_to_db(s, top_db=None)), s)
    # top_db is applied per spectrogram (last two dims), so batching does not couple items
    quiet = torch.stack([s[0], s[1] * 1e-6])
    batched = dsp.power_to_db(quiet, top_db=20.0)
    for i in range(2):
        torch.testing.assert_close(batched[i], dsp.power_to_db(quiet[i], top_db=20.0))
    # ref="max" is per spectrogram too, for power and amplitude
    for fn in (dsp.power_to_db, dsp.amplitude_to_db):
        batched = fn(quiet, ref="max")
        assert batched.amax(dim=(-2, -1)).abs().max() < 1e-5
        torch.testing.assert_close(batched[1], fn(quiet[1], ref="max"))
    clamped = dsp.clamp_db(torch.tensor([-100.0, -50.0, 3.0]))
    assert clamped.tolist() == [-80.0, -50.0, 0.0]
    with pytest.raises(ValueError):
        dsp.clamp_db(clamped, 0.0, -80.0)


# --------------------------------------------------------------------------- modules


def test_spectrogram_module_modes():
    x = _t(SIGNALS["realish"][:8000])
    spec = dsp.stft(x, 512, 128)
    torch.testing.assert_close(dsp.Spectrogram(512, 128, power=None)(x), spec)
    power = spec.abs() ** 2
    torch.testing.assert_close(dsp.Spectrogram(512, 128)(x), power, rtol=1e-5, atol=1e-6)
    db2 = dsp.Spectrogram(512, 128, log="db", top_db=80.0)(x)
    torch.testing.assert_close(db2, dsp.power_to_db(power, top_db=80.0), rtol=0, atol=1e-3)
    db1 = dsp.Spectrogram(512, 128, power=1.0, log="db", top_db=80.0)(x)
    torch.testing.assert_close(db1, dsp.amplitude_to_db(spec.abs(), top_db=80.0), rtol=0, atol=1e-3)
    ln = dsp.Spectrogram(512, 128, power=1.0, log="log", log_eps=1e-5)(x)
    torch.testing.assert_close(ln, torch.log(spec.abs().clamp(min=1e-5)))
    clamped = dsp.Spectrogram(512, 128, log="db", clamp=(-60.0, 0.0))(x)
    assert clamped.min() >= -60.0 and clamped.max() <= 0.0


def test_module_buffers_are_non_persistent_and_move():
    mel = dsp.MelSpectrogram(16000, n_fft=512, hop_length=128, n_mels=40, log="log")
    assert set(dict(mel.named_buffers())) == {"window", "mel_fb"}
    assert len(mel.state_dict()) == 0
    mel.load_state_dict({})  # strict load of an empty checkpoint works
    x = torch.randn(2, 4000)
    ref = mel(x)
    mel64 = mel.to(torch.float64)
    assert mel64.mel_fb.dtype == torch.float64
    # half-precision module casts keep accurate float32 buffers
    half = dsp.MelSpectrogram(16000, n_fft=512, hop_length=128, n_mels=40, log="log").bfloat16()
    assert half.mel_fb.dtype == torch.float32 and half.window.dtype == torch.float32
    torch.testing.assert_close(half(x), ref)


def test_mel_loss_is_differentiable():
    x = torch.randn(2, 4000, requires_grad=True)
    mel = dsp.MelSpectrogram(16000, n_fft=512, hop_length=128, n_mels=40, log="log")
    mel(x).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_module_argument_validation():
    with pytest.raises(ValueError, match="log"):
        dsp.Spectrogram(512, log="ln")
    with pytest.raises(ValueError, match="complex"):
        dsp.Spectrogram(512, power=None, log="db")
    with pytest.raises(ValueError, match="power"):
        dsp.MelSpectrogram(16000, power=None)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_device(device):
    mel = dsp.MelSpectrogram(16000, n_fft=512, hop_length=128, n_mels=40, log="db").to(device)
    x = torch.randn(2, 4000)
    out = mel(x.to(device))
    assert out.device.type == device
    torch.testing.assert_close(out.cpu(), mel.cpu()(x), rtol=1e-4, atol=1e-3)
    spec = dsp.stft(x.to(device), 512, 128)
    y = dsp.istft(spec, 512, 128, length=4000)
    assert y.device.type == device and (y.cpu() - x).abs().max() < 1e-4


# ------------------------------------------------------------------- Griffin-Lim / inversion


def _gl_convergence(mag: torch.Tensor, n_iter: int, seed: int = 0) -> float:
    gen = torch.Generator().manual_seed(seed)
    wave = dsp.griffin_lim(mag, 1024, 256, n_iter=n_iter, length=SR, generator=gen)
    assert wave.shape == (SR,) and wave.dtype == torch.float32
    return float(dsp.spectral_convergence(mag, dsp.stft(wave, 1024, 256).abs()))


def test_griffin_lim_converges():
    mag = dsp.stft(_t(SIGNALS["realish"]), 1024, 256).abs()
    sc = [_gl_convergence(mag, n) for n in (0, 4, 16, 64)]
    assert sc[0] > sc[1] > sc[2] > sc[3], sc
    assert sc[0] > 0.4  # random phase is far off ...
    assert sc[3] < 0.08  # ... 64 fast-GL iterations get close (measured ~0.04)


def test_griffin_lim_is_deterministic_and_batched():
    mag = dsp.stft(torch.randn(2, 4000), 512, 128).abs()
    a = dsp.griffin_lim(mag, 512, 128, n_iter=5, generator=torch.Generator().manual_seed(3))
    b = dsp.griffin_lim(mag, 512, 128, n_iter=5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    batched = dsp.griffin_lim(mag, 512, 128, n_iter=5, init="ones", length=4000)
    assert batched.shape == (2, 4000)
    for i in range(2):
        single = dsp.griffin_lim(mag[i], 512, 128, n_iter=5, init="ones", length=4000)
        torch.testing.assert_close(batched[i], single, rtol=1e-4, atol=1e-5)


def test_mel_to_linear_solves_nnls():
    x = _t(SIGNALS["realish"][: SR // 4])
    mel_mod = dsp.MelSpectrogram(SR, n_fft=1024, hop_length=256, n_mels=80)
    mel = mel_mod(x)
    lin = mel_mod.inverse(mel)
    assert lin.shape == (513, mel.shape[-1]) and lin.min() >= 0

    def residual(mag: torch.Tensor) -> float:
        return float(torch.linalg.norm(mel_mod.mel_fb @ mag**2 - mel) / torch.linalg.norm(mel))

    clipped_pinv = dsp.mel_to_linear(mel, SR, 1024, n_iter=0)
    assert residual(lin) < 0.02 and residual(lin) < residual(clipped_pinv)
    ref = librosa.feature.inverse.mel_to_stft(mel.numpy(), sr=SR, n_fft=1024)
    assert residual(lin) <= residual(_t(ref))  # at least as good as librosa's L-BFGS-B NNLS
    # batched
    both = dsp.mel_to_linear(torch.stack([mel, mel]), SR, 1024)
    torch.testing.assert_close(both[1], lin)


def test_mel_spectrogram_can_be_vocoded():
    x = _t(SIGNALS["realish"])
    mel_mod = dsp.MelSpectrogram(SR, n_fft=1024, hop_length=256, n_mels=80)
    log_mel = dsp.power_to_db(mel_mod(x), top_db=None)
    mag = mel_mod.inverse(dsp.db_to_power(log_mel))
    gen = torch.Generator().manual_seed(0)
    wave = dsp.griffin_lim(mag, 1024, 256, n_iter=48, length=SR, generator=gen)
    target, got = mel_mod(x).sqrt(), mel_mod(wave).sqrt()
    assert float(dsp.spectral_convergence(target, got)) < 0.15  # measured ~0.08


def test_frame_mask_aligns_blocks_centres_and_nearest_frames():
    from audio_core.audio.masks import frame_mask

    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [1] * 10]).bool()
    assert frame_mask(mask, 3, 4).tolist() == [[True, True, False], [True, True, True]]
    assert frame_mask(mask, 4, 3, align="center").tolist() == [[True, True, False, False],
                                                              [True] * 4]
    assert frame_mask(mask, 5, align="nearest").tolist() == [[True, True, True, False, False],
                                                            [True] * 5]
    with pytest.raises(ValueError, match="needs hop_length"):
        frame_mask(mask, 3, align="block")
