"""Mel distances: zero for identical input, monotone in noise, symmetric, batch == per item."""

from __future__ import annotations

import itertools

import pytest
import torch

from audio_core.metrics import mel_distance, multi_resolution_mel_distance, reconstruction_metrics

SR = 16000


def _tone(batch: int = 2, time: int = 8000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(time) / SR
    freqs = 200 + 600 * torch.rand(batch, 1, generator=g)
    return 0.5 * torch.sin(2 * torch.pi * freqs * t) + 0.05 * torch.randn(batch, time, generator=g)


def test_identical_is_zero():
    x = _tone()
    assert torch.equal(multi_resolution_mel_distance(x, x, SR), torch.zeros(2))


def test_grows_monotonically_with_noise():
    x = _tone(batch=1)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    levels = [0.001, 0.01, 0.05, 0.2, 1.0]
    dists = [multi_resolution_mel_distance(x + a * noise, x, SR).item() for a in levels]
    assert all(a < b for a, b in itertools.pairwise(dists)), dists


def test_symmetric_and_batch_equals_per_item():
    x, y = _tone(batch=3), _tone(batch=3, seed=5)
    d = multi_resolution_mel_distance(x, y, SR)
    assert torch.allclose(d, multi_resolution_mel_distance(y, x, SR), rtol=1e-5)
    per_item = torch.cat([multi_resolution_mel_distance(x[i : i + 1], y[i : i + 1], SR)
                          for i in range(3)])
    assert torch.allclose(d, per_item, rtol=1e-5, atol=1e-6)


def test_multi_resolution_is_mean_of_single():
    x, y = _tone(), _tone(seed=3)
    singles = [mel_distance(x, y, SR, n_fft=n, n_mels=m, hop_length=n // 2)
               for n, m in ((256, 32), (1024, 64))]
    multi = multi_resolution_mel_distance(x, y, SR, n_ffts=(256, 1024), n_mels=(32, 64),
                                          hop_ratio=0.5)
    assert torch.allclose(multi, torch.stack(singles).mean(0))


def test_bf16_channels_and_mask():
    x, y = _tone(batch=4), _tone(batch=4, seed=9)
    ref = multi_resolution_mel_distance(x.view(2, 2, -1), y.view(2, 2, -1), SR)
    half = multi_resolution_mel_distance(x.view(2, 2, -1).bfloat16(), y.view(2, 2, -1).bfloat16(),
                                         SR)
    assert half.dtype == torch.float32 and half.shape == (2,)
    assert torch.allclose(half, ref, rtol=0.05)
    mask = torch.ones(2, 8000, dtype=torch.bool)
    mask[1, 5000:] = False
    garbage = y.clone()[:2]
    garbage[1, 5000:] = 3.0
    masked = mel_distance(x[:2], garbage, SR, mask=mask)
    trimmed = mel_distance(x[1:2, :5000], y[1:2, :5000], SR)
    assert masked[1] == pytest.approx(trimmed.item(), rel=0.05)
    assert mel_distance(x[:2], garbage, SR)[1] > masked[1] * 1.5


def test_reconstruction_metrics_keys_and_values():
    x = _tone()
    out = reconstruction_metrics(x + 0.01 * torch.randn_like(x), x, SR)
    assert set(out) == {"si_sdr", "mel_distance", "l1"}
    assert all(isinstance(v, float) for v in out.values())
    assert out["si_sdr"] > 20 and 0 < out["mel_distance"] < 1 and 0 < out["l1"] < 0.02
    with pytest.raises(ValueError, match="equal length"):
        multi_resolution_mel_distance(x, x, SR, n_ffts=(512,), n_mels=(32, 64))


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                         reason="needs CUDA"))])
def test_float32_inside_bf16_autocast(device):
    x, y = _tone(batch=2).to(device), _tone(batch=2, seed=4).to(device)
    expected = reconstruction_metrics(x, y, SR)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        d = multi_resolution_mel_distance(x, y, SR)
        got = reconstruction_metrics(x, y, SR)
    assert d.dtype == torch.float32 and d.device.type == device
    assert got == pytest.approx(expected, rel=1e-5)
