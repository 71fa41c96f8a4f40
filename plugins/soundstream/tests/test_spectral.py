"""The STFT-domain encoder and decoder (``soundstream.spectral_encoder`` / ``_decoder``)."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_soundstream.spectral import SpectralDecoder, SpectralEncoder

from audio_core.audio.dsp import stft

SMALL = {"dim": 8, "hop_length": 16, "width": 16, "layers": 2}


@pytest.mark.parametrize("channels,time", [(1, 160), (1, 161), (2, 100)])
def test_shapes_follow_the_hop(channels, time):
    encoder, decoder = SpectralEncoder(channels, **SMALL), SpectralDecoder(channels, **SMALL)
    latent = encoder(torch.randn(3, channels, time))
    frames = -(-time // 16)
    assert latent.shape == (3, 8, frames)
    assert decoder(latent).shape == (3, channels, frames * 16)


def test_synthesis_inverts_the_encoders_framing():
    """The decoder's overlap-add of the exact STFT of x (frames + 1 centred frames, as the
    decoder's trunk produces) gives x back: magnitudes and phases are all it must learn."""
    decoder = SpectralDecoder(2, **SMALL)
    x = torch.randn(2, 2, 16 * 12, dtype=torch.float64)
    spec = stft(x, 64, 16, center=True)
    assert spec.shape == (2, 2, 33, 13)
    y = decoder.synthesize(spec)
    torch.testing.assert_close(y, x, atol=1e-9, rtol=0)


def test_gradients_reach_every_parameter():
    encoder, decoder = SpectralEncoder(**SMALL), SpectralDecoder(**SMALL)
    decoder(encoder(torch.randn(2, 1, 320))).pow(2).mean().backward()
    for name, param in [*encoder.named_parameters(), *decoder.named_parameters()]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_the_magnitude_is_clipped_so_early_training_stays_finite():
    decoder = SpectralDecoder(**SMALL, max_log_magnitude=2.0)
    with torch.no_grad():
        decoder.trunk.out.bias.fill_(1e4)
    assert torch.isfinite(decoder(torch.randn(1, 8, 5))).all()


def test_bad_shapes_and_sizes_are_refused_with_the_expected_shape():
    with pytest.raises(ValueError, match=r"\(batch, 1, time\)"):
        SpectralEncoder(**SMALL)(torch.randn(2, 2, 100))
    with pytest.raises(ValueError, match=r"\(batch, 8, frames\)"):
        SpectralDecoder(**SMALL)(torch.randn(2, 4, 10))
    with pytest.raises(ValueError, match="n_fft"):
        SpectralEncoder(hop_length=64, n_fft=32)
    with pytest.raises(ValueError, match="layers"):
        SpectralDecoder(layers=0)
