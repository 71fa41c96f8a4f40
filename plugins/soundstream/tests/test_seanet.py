"""The causal SEANet encoder/decoder: shapes for any length, causality, options."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_soundstream.seanet import SEANetDecoder, SEANetEncoder

from audio_core.models.autoencoder import AudioAutoencoder

SMALL = {"dim": 8, "width": 2, "ratios": (2, 3, 4)}  # hop 24
OPTIONS = {
    "plain": {},
    "no_norm": {"norm": False},
    "lstm": {"lstm_layers": 1},
    "wavelet": {"wavelet_levels": 3},
    "energy": {"energy": {"heads": 2, "head_dim": 4, "window": 5, "steps": 2}},
    "deep": {"residual_layers": 2, "dilation_base": 2},
}


@pytest.mark.parametrize("length", [1, 23, 24, 25, 240, 1001])
def test_shapes_for_arbitrary_lengths(length):
    enc, dec = SEANetEncoder(**SMALL), SEANetDecoder(**SMALL)
    assert enc.hop_length == dec.hop_length == 24 and enc.dim == dec.dim == 8
    z = enc(torch.randn(2, 1, length))
    frames = -(-length // 24)
    assert z.shape == (2, 8, frames)
    assert dec(z).shape == (2, 1, frames * 24)
    model = AudioAutoencoder(enc, dec, sample_rate=16000)
    assert model(torch.randn(2, 1, length)).reconstruction.shape == (2, 1, length)


@pytest.mark.parametrize("option", OPTIONS)
def test_options_keep_the_contract_and_stay_causal(option):
    torch.manual_seed(0)
    enc = SEANetEncoder(**SMALL, **OPTIONS[option]).double()
    dec_opts = {k: v for k, v in OPTIONS[option].items() if k not in ("wavelet_levels",
                                                                      "energy")}
    dec = SEANetDecoder(**SMALL, **dec_opts).double()
    x = torch.randn(1, 1, 480, dtype=torch.float64)
    y = dec(enc(x))
    assert y.shape == (1, 1, 480)
    # changing the future (from sample 240 = frame 10 on) leaves earlier outputs alone
    x2 = x.clone()
    x2[..., 240:] = torch.randn(1, 1, 240, dtype=torch.float64)
    z, z2 = enc(x), enc(x2)
    torch.testing.assert_close(z[..., :10], z2[..., :10])
    assert not torch.allclose(z[..., 10:], z2[..., 10:])
    torch.testing.assert_close(dec(z)[..., :240], dec(z2)[..., :240])


def test_stereo_and_validation():
    enc = SEANetEncoder(channels=2, **SMALL)
    dec = SEANetDecoder(channels=2, **SMALL)
    assert dec(enc(torch.randn(1, 2, 100))).shape == (1, 2, 120)
    with pytest.raises(ValueError, match=r"\(batch, 2, time\)"):
        enc(torch.randn(1, 1, 100))
    with pytest.raises(ValueError, match="ratios"):
        SEANetEncoder(ratios=())


def test_decoder_stage_outputs_rates():
    dec = SEANetDecoder(**SMALL, aux_outputs=True).train()
    dec(torch.randn(2, 8, 5))
    kept = dec.intermediates()
    assert kept["stage_factors"] == dec.stage_factors == [6, 2, 1]
    assert [tuple(s.shape) for s in kept["stages"]] == [(2, 8, 20), (2, 4, 60), (2, 2, 120)]
