"""The tokenizer model: shapes, encode/decode, chunking, checkpointing, SpecAugment, vocoder,
the core codec contract and token files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_plugin_bsq.specaugment import SpecAugment
from conftest import tiny_model
from einops import rearrange

from audio_core.contracts.models import CodecSpec
from audio_core.inference.tokens import read_tokens


def test_forward_returns_a_record(model):
    mel = -80 * torch.rand(2, 16, 30)  # 30 frames: padded to 32 inside, cropped back
    out = model(mel)
    assert out.reconstruction.shape == mel.shape and out.loss.ndim == 0
    assert out.codes.shape == (2, 1, 8 * 2)  # 8 time steps x 2 frequency patches
    assert out.latent.shape == out.quantized.latent.shape == (2, 32, 8 * 2)
    assert out.quantized.bits_per_frame == 8.0
    assert {"commitment", "bit_balance"} <= out.metrics.keys()
    assert model.frame_rate == 16000 / 64 / 4 and model.bitrate == model.frame_rate * 2 * 8
    assert (model.sample_rate, model.channels) == (16000, 1)


def test_chunked_latents_are_joined_like_the_codes(model):
    model.eval()
    mel = -80 * torch.rand(2, 16, 75)  # 3 chunks of 8 steps x 2 frequency patches
    out = model(mel)
    assert out.latent.shape == (2, 32, 3 * 16) and out.codes.shape == (2, 1, 3 * 16)
    first = model(mel[..., :32])  # the first chunk alone
    torch.testing.assert_close(out.latent[..., :16], first.latent)
    torch.testing.assert_close(out.quantized.latent[..., :16], first.quantized.latent)
    assert torch.equal(out.codes[..., :16], first.codes)


def test_encode_codes_decode_equals_forward(model):
    model.eval()
    mel = -80 * torch.rand(3, 16, 29)
    out = model(mel)
    codes = model.encode_mel(mel)
    assert torch.equal(codes, out.codes)
    assert torch.equal(model.decode_mel(codes, mel.shape[-1]), out.reconstruction.detach())


def test_long_inputs_are_chunked_consistently(model):
    model.eval()
    mel = -80 * torch.rand(1, 16, 75)  # 19 steps > 8 per chunk: 3 chunks of 8 steps
    out = model(mel)
    assert out.codes.shape == (1, 1, 3 * 8 * 2)
    assert torch.equal(model.decode_mel(out.codes, 75), out.reconstruction.detach())
    # each chunk is independent: the first chunk's codes are those of its frames alone
    assert torch.equal(model.encode_mel(mel[..., :32]), out.codes[..., :16])
    with pytest.raises(ValueError, match="whole chunks"):
        model.decode_mel(out.codes[..., :20])


def test_waveform_in_and_out(model):
    wave = 0.1 * torch.randn(2, 1, 1600)
    mel = model.mel_spectrogram(wave)
    assert mel.shape == (2, 16, 1 + 1600 // 64)
    assert mel.min() >= -80 and mel.max() <= 0
    assert model.reconstruct(wave).shape == wave.shape
    assert model.reconstruct(wave[:, 0]).shape == (2, 1600)
    codes = model.encode_audio(wave)
    out = model.decode_audio(codes, 1600)
    assert out.shape == (2, 1, 1600) and torch.isfinite(out).all()


def test_gradient_checkpointing_gives_the_same_gradients():
    mel = -80 * torch.rand(2, 16, 32)
    grads = []
    for ckpt in (False, True):
        m = tiny_model(checkpointing=ckpt)
        out = m(mel)
        ((out.reconstruction - mel).square().mean() + out.loss).backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
        bn = m.encoder.transformer.blocks[0].conv.batch_norm
        assert bn.num_batches_tracked == 1  # the conv module is never recomputed
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, atol=1e-6, rtol=1e-5, msg=name)


def test_n_mels_must_fit_the_patches():
    from audio_plugin_bsq.encoder import SpectrogramEncoder

    with pytest.raises(ValueError, match="patch_freq"):
        SpectrogramEncoder(n_mels=20, patch_freq=8)
    with pytest.raises(ValueError, match="n_mels"):
        tiny_model().__class__(tiny_model().encoder, tiny_model().quantizer,
                               tiny_model().decoder, n_mels=32)


def test_specaugment_masks_bands_in_training_only():
    aug = SpecAugment(time_masks=2, time_width=5, freq_masks=1, freq_width=3, fill=-80.0)
    spec = torch.zeros(64, 16, 40)
    out = aug(spec, torch.Generator().manual_seed(0))
    masked = out == -80.0
    time_bands = masked.all(1)  # (batch, frames): frames masked across every bin
    freq_bands = masked.all(2)  # (batch, bins)
    assert time_bands.sum(1).float().mean() > 0 and time_bands.sum(1).max() <= 10
    assert freq_bands.sum(1).max() <= 3 and freq_bands.any()
    assert torch.equal(masked, time_bands[:, None, :] | freq_bands[:, :, None])
    assert torch.equal(aug.eval()(spec), spec)


def test_codes_on_the_core_grid_are_the_tokens_time_major(model):
    model.eval()
    wave = 0.1 * torch.randn(2, 1, 5000)  # 20 time steps of 256 samples: 3 model chunks
    grid = model.encode_codes(wave)
    assert model.codec_spec() == CodecSpec(hop_length=256, num_codebooks=2, codebook_bits=8,
                                           scalable=False)
    assert grid.shape == (2, 2, 20)  # (batch, freq_patches x codes per token, steps)
    tokens = model.encode_audio(wave)[..., :20 * 2]
    assert torch.equal(rearrange(grid, "b (f k) t -> b k (t f)", f=2), tokens)
    # decoding pads to whole model chunks (3 x 8 steps), which decode independently
    whole = torch.cat([tokens, torch.zeros_like(tokens[..., :4 * 2])], dim=-1)
    torch.testing.assert_close(model.decode_codes(grid, 5000), model.decode_audio(whole, 5000))
    with pytest.raises(ValueError, match="all 2 code rows"):
        model.encode_codes(wave, n_quantizers=1)


@pytest.mark.parametrize("bits", [8, 70])  # 70 bits: two codes per token (62 + 8 bits)
def test_core_token_files_round_trip_and_know_their_model(tmp_path, bits):
    from audio_core.inference.codec import CodecError, decode_file, encode_file

    model = tiny_model(bits=bits).eval()
    wave = 0.1 * torch.randn(5000)
    sf.write(tmp_path / "in.wav", wave.numpy(), 16000, subtype="FLOAT")
    header = encode_file(model, tmp_path / "in.wav", tmp_path / "x.tokens",
                         show_progress=False)
    codes, back = read_tokens(tmp_path / "x.tokens")
    rows = 2 * (1 if bits == 8 else 2)
    assert back.model_fingerprint == header.model_fingerprint and codes.shape == (rows, 20)
    assert (back.codebook_bits, back.hop_length, back.frame_rate) == (min(bits, 62), 256, 62.5)
    padded = torch.nn.functional.pad(wave, (0, 20 * 256 - 5000))[None, None]
    assert torch.equal(codes, model.encode_codes(padded)[0])
    decode_file(model, tmp_path / "x.tokens", tmp_path / "out.wav", show_progress=False)
    audio, rate = sf.read(tmp_path / "out.wav")
    # one chunk of 20 frames, decoded at its full length (Griffin-Lim depends on it), trimmed
    expected = model.decode_codes(codes[None], 20 * 256)[0, 0, :5000].clamp(-1, 1)
    assert rate == 16000 and audio.shape == (5000,)
    np.testing.assert_allclose(audio, expected.numpy(), atol=1e-4)
    with pytest.raises(CodecError, match="fingerprint"):
        decode_file(tiny_model(bits=bits, seed=1), tmp_path / "x.tokens", tmp_path / "o.wav")
    with pytest.raises(CodecError, match="fixed"):
        decode_file(model, tmp_path / "x.tokens", tmp_path / "o.wav", n_quantizers=1)
