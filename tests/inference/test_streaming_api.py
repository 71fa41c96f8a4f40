"""``model.encode_stream`` / ``decode_stream``: chunk by chunk equals offline for causal
models; a non-causal model is a one-line error naming the part that does not stream."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from audio_core.models.autoencoder import AudioAutoencoder
from audio_core.models.streaming import StreamingError

from .conftest import HOP, RATE, FrameDecoder

LENGTH = 1001
CHUNKINGS = {"whole": [LENGTH], "odd": [7] * 143, "ragged": [100, 1, 0, 333, 567]}


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("n_quantizers", [None, 2])
def test_encode_stream_equals_encode_codes(codec, chunking, n_quantizers):
    x = torch.randn(2, 1, LENGTH)
    parts = list(codec.encode_stream(torch.split(x, CHUNKINGS[chunking], dim=-1),
                                     n_quantizers=n_quantizers))
    assert len(parts) == len(CHUNKINGS[chunking]) + 1  # one per chunk, then the flush
    codes = torch.cat(parts, dim=-1)
    assert codes.dtype == torch.long
    assert torch.equal(codes, codec.encode_codes(x, n_quantizers=n_quantizers))


@pytest.mark.parametrize("frames", [[251], [1] * 251, [100, 0, 151]])
def test_decode_stream_equals_decode_codes(codec, frames):
    codes = codec.encode_codes(torch.randn(1, 1, LENGTH))
    audio = torch.cat(list(codec.decode_stream(torch.split(codes, frames, dim=-1))), dim=-1)
    offline = codec.decode_codes(codes)
    assert audio.shape == offline.shape == (1, 1, 251 * HOP)
    torch.testing.assert_close(audio, offline, atol=1e-6, rtol=1e-5)


def test_latent_stream_of_an_autoencoder(autoencoder):
    x = torch.randn(1, 1, LENGTH)
    latent = torch.cat(list(autoencoder.encode_stream(torch.split(x, 50, dim=-1))), dim=-1)
    torch.testing.assert_close(latent, autoencoder.encode(x), atol=1e-6, rtol=1e-5)
    audio = torch.cat(list(autoencoder.decode_stream(torch.split(latent, 9, dim=-1))), dim=-1)
    torch.testing.assert_close(audio, autoencoder.decode(latent), atol=1e-6, rtol=1e-5)
    with pytest.raises(StreamingError, match="no discrete codes"):
        list(autoencoder.decode_stream([torch.zeros(1, 3, 2, dtype=torch.long)]))


class LookAheadEncoder(nn.Module):
    """Non-causal: a centred kernel sees the next sample."""

    dim, hop_length = 8, HOP

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 8, kernel_size=2 * HOP + 1, stride=HOP, padding=HOP)

    def forward(self, waveform):
        return self.conv(waveform)


def test_non_causal_model_refuses_to_stream():
    model = AudioAutoencoder(LookAheadEncoder(), FrameDecoder(), sample_rate=RATE)
    with pytest.raises(StreamingError, match=r"its encoder \(LookAheadEncoder\) is not causal"):
        next(model.encode_stream([torch.zeros(1, 1, 8)]))


class LateDecoder(FrameDecoder):
    """Holds each chunk's last frame back until the next chunk or :meth:`flush` (a
    ``FlushingDecoder``, as EnCodec's reflect padding makes its decoder)."""

    def stream(self, latent, state):
        held = torch.cat([state.get("held", latent[..., :0]), latent], dim=-1)
        state["held"] = held[..., -1:]
        return super().stream(held[..., :-1], state) if held.shape[-1] > 1 \
            else latent.new_zeros(latent.shape[0], 1, 0)

    def flush(self, state):
        held = state.get("held")
        return super().stream(held, state) if held is not None else torch.zeros(1, 1, 0)


def test_flushing_decoder_gives_the_held_back_samples_at_the_end(codec):
    model = AudioAutoencoder(codec.encoder, LateDecoder(), codec.quantizer, sample_rate=RATE)
    model.decoder.load_state_dict(codec.decoder.state_dict())
    codes = codec.encode_codes(torch.randn(1, 1, LENGTH))
    parts = list(model.decode_stream(torch.split(codes, [100, 1, 150], dim=-1)))
    assert [p.shape[-1] for p in parts] == [99 * HOP, HOP, 150 * HOP, HOP]  # then the flush
    torch.testing.assert_close(torch.cat(parts, dim=-1), codec.decode_codes(codes),
                               atol=1e-6, rtol=1e-5)
