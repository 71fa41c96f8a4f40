"""SI-SDR, SNR and L1: analytic values, invariances, masks, shapes and dtypes."""

from __future__ import annotations

import math

import pytest
import torch

from audio_core.metrics import l1_distance, si_sdr, snr


def _pair(snr_db: float, batch: int = 3, time: int = 8000, seed: int = 0):
    """Zero-mean reference and estimate = ref + noise orthogonal to ref at exactly snr_db."""
    g = torch.Generator().manual_seed(seed)
    ref = torch.randn(batch, time, generator=g, dtype=torch.float64)
    noise = torch.randn(batch, time, generator=g, dtype=torch.float64)
    ref -= ref.mean(-1, keepdim=True)
    noise -= noise.mean(-1, keepdim=True)
    noise -= (noise * ref).sum(-1, keepdim=True) / ref.square().sum(-1, keepdim=True) * ref
    scale = ref.norm(dim=-1, keepdim=True) / noise.norm(dim=-1, keepdim=True)
    noise *= scale * 10 ** (-snr_db / 20)
    return (ref + noise).float(), ref.float()


def test_identical_signals_are_very_high():
    x = torch.randn(2, 4000)
    assert (si_sdr(x, x) > 80).all()
    assert (snr(x, x) > 80).all()


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_si_sdr_matches_analytic_snr(snr_db):
    est, ref = _pair(snr_db)
    assert torch.allclose(si_sdr(est, ref), torch.full((3,), snr_db), atol=0.1)
    assert torch.allclose(snr(est, ref), torch.full((3,), snr_db), atol=0.1)


def test_scale_invariance_and_snr_is_not():
    est, ref = _pair(10.0)
    for gain in (0.1, 3.0, -2.0):
        assert torch.allclose(si_sdr(gain * est, ref), si_sdr(est, ref), atol=1e-3)
    assert (snr(0.5 * est, ref) < snr(est, ref) - 1).all()


def test_zero_mean_ignores_dc_offset():
    est, ref = _pair(20.0)
    assert torch.allclose(si_sdr(est + 0.5, ref), si_sdr(est, ref), atol=1e-3)
    assert (si_sdr(est + 0.5, ref, zero_mean=False) < 10).all()


def test_mask_ignores_padding():
    est, ref = _pair(15.0, batch=2, time=6000)
    valid = [6000, 4000]
    mask = torch.arange(6000)[None] < torch.tensor(valid)[:, None]
    padded_est = torch.where(mask, est, torch.randn_like(est) * 5)  # garbage in the padding
    masked = si_sdr(padded_est, ref, mask=mask)
    for i, n in enumerate(valid):
        alone = si_sdr(est[i : i + 1, :n], ref[i : i + 1, :n])
        assert masked[i] == pytest.approx(alone.item(), abs=1e-3)
        assert snr(padded_est, ref, mask=mask)[i] == pytest.approx(
            snr(est[i : i + 1, :n], ref[i : i + 1, :n]).item(), abs=1e-3)
        assert l1_distance(padded_est, ref, mask=mask)[i] == pytest.approx(
            (est[i, :n] - ref[i, :n]).abs().mean().item(), rel=1e-5)
    assert si_sdr(padded_est, ref)[1] < masked[1] - 10


def test_channels_batch_and_bf16():
    est, ref = _pair(12.0, batch=4)
    stereo_est, stereo_ref = est.view(2, 2, -1), ref.view(2, 2, -1)
    out = si_sdr(stereo_est, stereo_ref)
    assert out.shape == (2,) and out.dtype == torch.float32
    assert torch.allclose(out, torch.full((2,), 12.0), atol=0.1)
    half = si_sdr(est.bfloat16(), ref.bfloat16())
    assert half.dtype == torch.float32
    assert torch.allclose(half, torch.full((4,), 12.0), atol=0.5)  # bf16 input rounding
    assert l1_distance(est, ref).shape == (4,)


def test_shape_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        si_sdr(torch.zeros(1, 10), torch.zeros(1, 11))
    with pytest.raises(ValueError, match="mask"):
        si_sdr(torch.zeros(2, 10), torch.zeros(2, 10), mask=torch.ones(2, 9, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        snr(torch.zeros(10), torch.zeros(10))


def test_silence_is_finite():
    z = torch.zeros(1, 100)
    assert math.isfinite(si_sdr(z, z).item()) and math.isfinite(snr(z, torch.ones(1, 100)).item())
