"""The magnitude spectrogram and encoder: frame grid, compression and latent range."""

from __future__ import annotations

import math

import pytest
import torch
from audio_plugin_mousai.encoder import MagnitudeEncoder
from audio_plugin_mousai.stft import MagnitudeSpectrogram


def test_spectrogram_grid_is_the_waveform_grid_over_the_hop():
    spec = MagnitudeSpectrogram(n_fft=256, hop_length=64, log=False)
    for time in (64, 1000, 4096):
        out = spec(torch.randn(3, 2, time))
        assert out.shape == (3, 2 * 129, math.ceil(time / 64))
    # a sine centred on frame k shows up in frame k, at its bin, in its channel
    t = torch.arange(4096) / 16000
    wave = torch.zeros(1, 2, 4096)
    wave[0, 1, 1024:1088] = torch.sin(2 * torch.pi * 2000 * t[1024:1088])
    out = spec(wave)
    assert out[0, :129].abs().max() == 0  # channel 0 is silent
    frame_energy = out[0, 129:].sum(0)
    assert int(frame_energy.argmax()) == 1024 // 64
    assert int(out[0, 129:, 16].argmax()) == round(2000 / (16000 / 256))


def test_log_compression_is_log1p_of_the_magnitude():
    x = torch.randn(1, 1, 1024)
    lin = MagnitudeSpectrogram(256, 64, log=False)(x)
    torch.testing.assert_close(MagnitudeSpectrogram(256, 64, log=True)(x), torch.log1p(lin))


@pytest.mark.parametrize(("channels", "stft_hop", "factors", "latent_dim", "compression"), [
    (2, 256, (2, 2), 32, 64),      # Moûsai: stereo, 1024 samples per frame, 32 channels
    (2, 64, (2, 2), 8, 64),        # the tiny preset
    (1, 128, (4,), 4, 128),
])
def test_latent_has_the_configured_compression_and_range(channels, stft_hop, factors,
                                                         latent_dim, compression):
    torch.manual_seed(0)
    enc = MagnitudeEncoder(channels=channels, n_fft=4 * stft_hop, stft_hop=stft_hop,
                           widths=[16] * (len(factors) + 1), factors=factors, blocks=1,
                           latent_dim=latent_dim)
    hop = stft_hop * math.prod(factors)
    assert enc.hop_length == hop and enc.compression == compression
    for time in (hop, 5 * hop + 7):
        wave = torch.randn(2, channels, time)
        latent = enc(wave)
        assert latent.shape == (2, latent_dim, math.ceil(time / hop))
        assert wave.numel() / latent.numel() >= compression * 0.8
        assert latent.abs().max() < 1  # tanh bottleneck
    loud = enc(100 * torch.randn(2, channels, 4 * hop))
    assert loud.abs().max() <= 1 and torch.isfinite(loud).all()


def test_encoder_gradients_reach_every_parameter():
    enc = MagnitudeEncoder(channels=2, n_fft=128, stft_hop=32, widths=[8, 8, 8],
                           factors=[2, 2], blocks=1, latent_dim=4)
    enc(torch.randn(2, 2, 512)).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_bad_settings_name_the_problem():
    with pytest.raises(ValueError, match=r"len\(widths\) == len\(factors\) \+ 1"):
        MagnitudeEncoder(widths=[8, 8], factors=[2, 2])
    with pytest.raises(ValueError, match=r"expects \(batch, 2, time\)"):
        MagnitudeEncoder(n_fft=64, stft_hop=16, widths=[8, 8], factors=[2], latent_dim=4)(
            torch.randn(1, 1, 256))
