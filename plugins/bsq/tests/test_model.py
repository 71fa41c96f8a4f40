"""The tokenizer model: shapes, encode/decode, chunking, checkpointing, SpecAugment, vocoder,
token files."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_bsq.specaugment import SpecAugment
from audio_plugin_bsq.tokens import (
    FORMAT_VERSION,
    TokenFileError,
    header_for,
    model_fingerprint,
    read_tokens,
    write_tokens,
)
from conftest import tiny_model


def test_forward_shapes_and_info(model):
    mel = -80 * torch.rand(2, 16, 30)  # 30 frames: padded to 32 inside, cropped back
    recon, loss, info = model(mel)
    assert recon.shape == mel.shape and loss.ndim == 0
    assert info["codes"].shape == (2, 1, 8 * 2)  # 8 time steps x 2 frequency patches
    assert info["bits_per_token"] == 8.0
    assert model.frame_rate == 16000 / 64 / 4 and model.bitrate == model.frame_rate * 2 * 8


def test_encode_codes_decode_equals_forward(model):
    model.eval()
    mel = -80 * torch.rand(3, 16, 29)
    recon, _, info = model(mel)
    codes = model.encode(mel)
    assert torch.equal(codes, info["codes"])
    assert torch.equal(model.decode(codes, mel.shape[-1]), recon.detach())


def test_long_inputs_are_chunked_consistently(model):
    model.eval()
    mel = -80 * torch.rand(1, 16, 75)  # 19 steps > 8 per chunk: 3 chunks of 8 steps
    recon, _, info = model(mel)
    assert info["codes"].shape == (1, 1, 3 * 8 * 2)
    assert torch.equal(model.decode(info["codes"], 75), recon.detach())
    # each chunk is independent: the first chunk's codes are those of its frames alone
    assert torch.equal(model.encode(mel[..., :32]), info["codes"][..., :16])
    with pytest.raises(ValueError, match="whole chunks"):
        model.decode(info["codes"][..., :20])


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
        recon, loss, _ = m(mel)
        ((recon - mel).square().mean() + loss).backward()
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


def test_token_file_round_trip(tmp_path, model):
    model.eval()
    wave = 0.1 * torch.randn(1, 1, 1000)
    codes = model.encode_audio(wave)[0]
    header = header_for(model, codes, frames=1 + 1000 // 64, samples=1000)
    path = write_tokens(tmp_path / "clip.bsqt", codes, header)
    assert path.stat().st_size < 200 + (codes.shape[-1] * 8 + 7) // 8
    back = read_tokens(path, fingerprint=model_fingerprint(model))
    assert back.header == header and torch.equal(back.codes, codes)
    assert back.header.frame_rate == model.frame_rate and back.header.bits == 8
    decoded = model.decode(back.codes[None], back.header.frames)
    torch.testing.assert_close(decoded, model(model.mel_spectrogram(wave))[0])
    with pytest.raises(TokenFileError, match="made by model"):
        read_tokens(path, fingerprint=model_fingerprint(tiny_model(seed=1)))
    data = bytearray(path.read_bytes())
    data[4] = FORMAT_VERSION + 1
    (tmp_path / "v2.bsqt").write_bytes(bytes(data))
    with pytest.raises(TokenFileError, match="format version"):
        read_tokens(tmp_path / "v2.bsqt")


def test_token_file_with_many_bits(tmp_path):
    from audio_plugin_bsq.tokens import TokenHeader

    codes = torch.randint(0, 2**30, (3, 11)) % torch.tensor([2**30, 2**30, 2**10])[:, None]
    header = TokenHeader(bits=70, bits_per_code=30, tokens=11, freq_patches=1,
                         sample_rate=16000, frame_rate=6.25)
    back = read_tokens(write_tokens(tmp_path / "x.bsqt", codes, header))
    assert torch.equal(back.codes, codes)
    with pytest.raises(ValueError, match="do not match the header"):
        write_tokens(tmp_path / "y.bsqt", codes[:2], header)
