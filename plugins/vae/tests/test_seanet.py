"""The SEANet-style encoder and decoder: shapes for any length, mono and stereo, geometry
checks, Snake."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_vae.activations import Snake, activation
from audio_plugin_vae.seanet import VAEDecoder, VAEEncoder

SMALL = {"width": 4, "strides": [2, 3, 4], "residual_blocks": 1, "latent_dim": 5}


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("length", [1, 23, 24, 25, 1000])
@pytest.mark.parametrize("act", ["elu", "snake"])
def test_any_length_gives_ceil_frames_and_whole_hops(channels, length, act):
    enc = VAEEncoder(channels=channels, activation=act, **SMALL)
    dec = VAEDecoder(channels=channels, activation=act, **SMALL)
    assert enc.hop_length == dec.hop_length == 24
    latent = enc(torch.randn(2, channels, length))
    frames = -(-length // 24)
    assert latent.shape == (2, 10, frames)  # mean and scale: 2 * latent_dim
    assert dec(latent[:, :5]).shape == (2, channels, frames * 24)


def test_stride_one_and_custom_multipliers():
    enc = VAEEncoder(width=3, strides=[1, 2], multipliers=[1, 5], residual_blocks=2,
                     latent_dim=2, posterior=False)
    assert enc.dim == 2 and enc.hop_length == 2
    assert enc(torch.randn(1, 1, 9)).shape == (1, 2, 5)
    widths = [m.out_channels for m in enc.modules() if isinstance(m, torch.nn.Conv1d)]
    assert 15 in widths and max(widths) == 15


def test_encoder_frames_do_not_depend_on_what_follows():
    """Non-causal, but the padding is local: frames far from the end are unchanged when
    audio is appended (receptive field well inside the signal)."""
    enc = VAEEncoder(norm="none", **SMALL).eval()
    x = torch.randn(1, 1, 24 * 40)
    with torch.no_grad():
        short, longer = enc(x), enc(torch.cat([x, torch.randn(1, 1, 24 * 5)], -1))
    torch.testing.assert_close(short[..., :30], longer[..., :30])


def test_a_declared_hop_that_differs_from_the_strides_is_an_error():
    with pytest.raises(ValueError, match="hop_length 256 does not match the strides"):
        VAEEncoder(strides=[2, 4, 5, 8], hop_length=256)
    with pytest.raises(ValueError, match="hop_length 100"):
        VAEDecoder(strides=[2, 4], hop_length=100)
    assert VAEEncoder(strides=[2, 4], hop_length=8, width=2).hop_length == 8


@pytest.mark.parametrize("kwargs, match", [
    ({"strides": []}, "strides"),
    ({"strides": [2, 0]}, "strides"),
    ({"multipliers": [1, 2]}, "one entry per stride"),
    ({"width": 0}, "width=0"),
    ({"activation": "relu"}, "activation"),
    ({"kernel_size": 4}, "odd kernel_size"),
])
def test_bad_geometry_is_an_error_naming_it(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAEEncoder(**{"strides": [2, 4, 5, 8], **kwargs})


def test_wrong_input_shapes_are_errors():
    with pytest.raises(ValueError, match=r"\(batch, 2, time\)"):
        VAEEncoder(channels=2, **SMALL)(torch.randn(1, 1, 48))
    with pytest.raises(ValueError, match=r"\(batch, 5, frames\)"):
        VAEDecoder(**SMALL)(torch.randn(1, 10, 3))


def test_snake_is_x_plus_sin_squared_over_alpha_and_learns_alpha():
    snake = Snake(3, alpha_init=2.0)
    x = torch.linspace(-3, 3, 12).view(1, 3, 4)
    torch.testing.assert_close(snake(x), x + torch.sin(2.0 * x).pow(2) / 2.0)
    snake(x).sum().backward()
    assert snake.log_alpha.grad is not None and snake.log_alpha.grad.abs().sum() > 0
    assert isinstance(activation("elu", 3), torch.nn.ELU)
