"""rae.vit: waveform and spectrogram patches, attention within encoder windows, geometry
errors; rae.griffin_lim and the rae.mel_l1 loss."""

from __future__ import annotations

import re

import pytest
import torch
from audio_plugin_rae.decoder import ViTDecoder, default_mel_hop
from audio_plugin_rae.losses import MelPatchLoss
from audio_plugin_rae.vocoder import GriffinLimVocoder
from conftest import noise, seeded

from audio_core.models.autoencoder import AutoencoderOutput


def decoder(**kw):
    kw = {"dim": 8, "hop_length": 40, "width": 32, "depth": 2, "heads": 2, **kw}
    return seeded(lambda: ViTDecoder(**kw)).eval()


@pytest.mark.parametrize("channels", [1, 2])
def test_waveform_output_is_one_patch_of_hop_samples_per_token(channels):
    dec = decoder(channels=channels)
    latent = noise(3, 8, 7)
    out = dec(latent)
    assert out.shape == (3, channels, 7 * 40)
    head = dec.head(dec.tokens(latent))  # (batch, tokens, channels * hop)
    torch.testing.assert_close(out[:, -1, 40 * 2:40 * 3], head[:, 2, -40:])


def test_attention_stays_within_encoder_windows():
    dec = decoder(window=5)
    latent = noise(2, 8, 12)  # windows of 5, 5 and a partial one of 2
    out = dec(latent)
    for start, stop in ((0, 5), (5, 10), (10, 12)):
        torch.testing.assert_close(out[..., start * 40:stop * 40],
                                   dec(latent[..., start:stop]), atol=1e-5, rtol=1e-5)
    whole = decoder()(latent)  # without windows every token sees every other one
    assert not torch.allclose(whole[..., :200], decoder()(latent[..., :5]), atol=1e-4)


def test_decoder_checks_its_input():
    with pytest.raises(ValueError, match=re.escape("expects a latent (batch, 8, frames)")):
        decoder()(noise(1, 9, 4))
    with pytest.raises(ValueError, match="output must be one of"):
        decoder(output="mel")


@pytest.mark.parametrize("channels", [1, 2])
def test_stft_output_overlap_adds_stft_frames_of_each_token(channels):
    """``output: stft``: hop_length / stft_hop STFT frames per token, inverse STFT to exactly
    frames * hop_length samples; exact log magnitudes and phases give the waveform back."""
    dec = decoder(output="stft", channels=channels, stft_hop=10)
    assert (dec.stft_frames, dec.stft_n_fft) == (4, 40)
    latent = noise(3, 8, 7)
    assert dec(latent).shape == (3, channels, 7 * 40)
    x = noise(2, channels, 7 * 40).double()
    spec = torch.stft(x.reshape(-1, 7 * 40), 40, 10, window=torch.hann_window(40).double(),
                      center=True, return_complex=True)  # 29 frames: 7 x 4, one repeated
    packed = torch.stack([spec.abs().clamp_min(1e-12).log(), spec.angle()], dim=1)
    packed = packed.reshape(2, channels, 2, 21, 29)[..., :28]
    tokens = packed.reshape(2, channels, 2, 21, 7, 4).permute(0, 4, 1, 5, 2, 3)
    head = tokens.reshape(2, 7, -1)  # what the head would output per token
    dec.head = torch.nn.Identity()
    dec.max_log_magnitude = 50.0
    y = dec._synthesize(head)
    # the last hop overlaps the repeated last frame instead of the true next one
    torch.testing.assert_close(y[..., :6 * 40], x[..., :6 * 40], atol=1e-5, rtol=0)


def test_stft_output_gets_gradients_and_checks_its_geometry():
    dec = decoder(output="stft").train()
    dec(noise(2, 8, 5)).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in dec.parameters())
    with pytest.raises(ValueError, match="multiple of stft_hop=7"):
        decoder(output="stft", stft_hop=7)
    with pytest.raises(ValueError, match="one token per time step"):
        decoder(output="stft", tokens_per_step=2)


def spectrogram_decoder(**kw):
    return decoder(output="spectrogram", tokens_per_step=4, hop_length=64, n_mels=16,
                   n_fft=256, mel_hop=64, **kw)


def test_spectrogram_patches_tile_frequency_rows_and_time_steps():
    dec = spectrogram_decoder()
    # a step of 4 tokens covers 256 samples = 4 mel frames; each token 4 frames x 4 bands
    assert (dec.frames_per_step, dec.head.out_features) == (4, 16)

    class Index(torch.nn.Module):  # token n, value j -> 1000 n + j
        def forward(self, h):
            n = torch.arange(h.shape[1], dtype=h.dtype)[None, :, None]
            return 1000 * n + torch.arange(16, dtype=h.dtype) + 0 * h[..., :1]

    dec.head = Index()
    mel = dec(noise(1, 8, 8))  # 2 steps of 4 tokens
    assert mel.shape == (1, 16, 8) and dec.mel_frames(8) == 8
    for step in range(2):
        for row in range(4):
            token = step * 4 + row
            patch = mel[0, row * 4:(row + 1) * 4, step * 4:(step + 1) * 4]  # (bands, frames)
            expected = 1000 * token + torch.arange(16.0).reshape(4, 4).T  # value p * 4 + m
            torch.testing.assert_close(patch, expected)
    assert dec(noise(1, 8, 6)).shape == (1, 16, 8)  # a partial step is padded to whole


def test_spectrogram_output_geometry_errors():
    with pytest.raises(ValueError, match=re.escape(
            "covers 256 samples, which must be a multiple of mel_hop=100")):
        decoder(output="spectrogram", tokens_per_step=4, hop_length=64, n_mels=16,
                mel_hop=100)
    with pytest.raises(ValueError, match=re.escape("n_mels=18 must be a multiple of "
                                                   "tokens_per_step=4")):
        decoder(output="spectrogram", tokens_per_step=4, hop_length=64, n_mels=18)
    assert default_mel_hop(320, 1024) == 160 and default_mel_hop(2048, 1024) == 256


def test_target_mel_is_the_log_mel_of_the_input_cut_or_padded_to_the_prediction():
    dec = spectrogram_decoder()
    wave = noise(2, 1, 512)  # 512 / 64 + 1 = 9 centred frames
    full = dec.mel(wave[:, 0])
    assert full.shape == (2, 16, 9)
    torch.testing.assert_close(dec.target_mel(wave, 8), full[..., :8])
    padded = dec.target_mel(wave, 11)
    torch.testing.assert_close(padded[..., :9], full)
    assert torch.all(padded[..., 9:] == torch.log(torch.tensor(1e-5)))


def test_griffin_lim_inverts_a_log_mel_to_a_waveform_deterministically():
    dec = spectrogram_decoder()
    t = torch.arange(4096) / 16000
    wave = (0.5 * torch.sin(2 * torch.pi * 440 * t))[None, None]
    vocoder = GriffinLimVocoder(16000, n_fft=256, hop_length=64, n_mels=16, n_iter=8,
                                nnls_iter=10)
    out = vocoder(dec.mel(wave[:, 0]), 4096)
    assert out.shape == (1, 1, 4096) and torch.equal(out, vocoder(dec.mel(wave[:, 0]), 4096))
    back, ref = dec.mel(out[:, 0]), dec.mel(wave[:, 0])
    strong = ref > ref.max() - 6.0  # the tone's bands, within 26 dB of the peak
    assert (back - ref)[strong].abs().mean() < 0.5
    with pytest.raises(ValueError, match=re.escape("expects a log-mel (batch, 16, frames)")):
        vocoder(torch.zeros(1, 8, 4))


def test_spectrogram_loss_reads_the_models_intermediates():
    pred = torch.zeros(2, 4, 6, requires_grad=True)
    target = torch.ones(2, 4, 6)
    target[1, :, 3:] = 5.0
    out = AutoencoderOutput(torch.zeros(2, 1, 60), torch.zeros(2, 3, 6), None,
                            {"decoder.mel": pred, "decoder.mel_target": target})
    loss = MelPatchLoss()
    value = loss(torch.zeros(2, 1, 60), torch.zeros(2, 1, 60), output=out).value
    torch.testing.assert_close(value, torch.tensor((1.0 * 36 + 5.0 * 12) / 48))
    mask = torch.ones(2, 60, dtype=torch.bool)
    mask[1, 30:] = False  # the 5.0 frames are padding
    torch.testing.assert_close(loss(out.reconstruction, out.reconstruction, mask,
                                    output=out).value, torch.tensor(1.0))
    value.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"rae\.mel_l1 trains a rae\.vit decoder"):
        loss(out.reconstruction, out.reconstruction, output=AutoencoderOutput(
            out.reconstruction, out.latent, None))
