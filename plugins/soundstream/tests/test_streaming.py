"""Streaming: chunk-by-chunk encoding/decoding equals the offline result."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_soundstream.seanet import SEANetDecoder, SEANetEncoder
from audio_plugin_soundstream.streaming import StreamingCodec

from audio_core.components.rvq import ResidualVQ

LENGTH = 1001  # not a multiple of the hop (24)
CHUNKINGS = {"one": [LENGTH], "hop": [24] * 41 + [17], "odd": [7] * 143,
             "ragged": [100, 1, 0, 333, 567], "long_then_short": [500, 5, 5, 491]}


def build(**options):
    torch.manual_seed(0)
    small = {"dim": 8, "width": 4, "ratios": (2, 3, 4)}
    enc = SEANetEncoder(**small, lstm_layers=1, wavelet_levels=2,
                        energy={"heads": 2, "head_dim": 4, "window": 3}, **options)
    dec = SEANetDecoder(**small, lstm_layers=1, **options)
    rvq = ResidualVQ(dim=8, num_codebooks=3, codebook_size=16)
    rvq.train()(enc(torch.randn(4, 1, 2400)))  # k-means init: a non-random codebook
    return enc.double().eval(), dec.double().eval(), rvq.double().eval()


@pytest.fixture(scope="module")
def codec():
    return build()


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("n_quantizers", [None, 1])
def test_streaming_equals_offline(codec, chunking, n_quantizers):
    enc, dec, rvq = codec
    x = torch.randn(2, 1, LENGTH, dtype=torch.float64)
    with torch.no_grad():
        offline = dec(rvq.decode(rvq.encode(enc(x), n_quantizers)))
    chunks = list(torch.split(x, CHUNKINGS[chunking], dim=-1))
    streamed = StreamingCodec(enc, dec, rvq, n_quantizers=n_quantizers).run(chunks)
    assert streamed.shape == offline.shape == (2, 1, 42 * 24)
    torch.testing.assert_close(streamed, offline, atol=1e-10, rtol=1e-9)


def test_streaming_latents_equal_offline_in_float32():
    enc, dec, _ = build()
    enc, dec = enc.float(), dec.float()
    x = torch.randn(1, 1, LENGTH)
    codec = StreamingCodec(enc, dec)
    state = codec.init_state()
    frames = [codec.encode_step(c, state) for c in torch.split(x, 50, dim=-1)]
    frames.append(enc.flush(state))
    latent = torch.cat(frames, dim=-1)
    torch.testing.assert_close(latent, enc(x), atol=1e-5, rtol=1e-5)
    state = codec.init_state()
    audio = torch.cat([codec.decode_step(f, state) for f in torch.split(latent, 5, dim=-1)],
                      dim=-1)
    torch.testing.assert_close(audio, dec(latent), atol=1e-5, rtol=1e-5)
