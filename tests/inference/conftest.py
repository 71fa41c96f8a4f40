"""A tiny causal codec built from core parts only (core's tests run without plugins):
frame-wise encoder and decoder with one frame of past context, which implement the
streaming protocols of :mod:`audio_core.models.streaming`."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from audio_core.components.rvq import ResidualVQ
from audio_core.contracts.components import Decoder, Encoder
from audio_core.models.autoencoder import AudioAutoencoder

HOP, DIM, RATE = 4, 8, 8000


class CausalFrames(nn.Module):
    """``(batch, c_in, frames)`` -> ``(batch, c_out, frames)`` from each frame and the one
    before it (kernel 2, left-padded): causal, so chunks only need the last frame."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size=2)

    def forward(self, x: Tensor, past: Tensor | None = None) -> Tensor:
        past = x.new_zeros(*x.shape[:2], 1) if past is None else past
        return self.conv(torch.cat([past, x], dim=-1))


class FrameEncoder(nn.Module, Encoder):
    """Waveform ``(batch, 1, time)`` -> ``(batch, DIM, ceil(time / HOP))``."""

    dim, hop_length = DIM, HOP

    def __init__(self) -> None:
        super().__init__()
        self.net = CausalFrames(HOP, DIM)

    def forward(self, waveform: Tensor) -> Tensor:
        x = F.pad(waveform, (0, -waveform.shape[-1] % HOP))
        return self.net(rearrange(x, "b 1 (f h) -> b h f", h=HOP))

    def stream_state(self) -> dict:
        return {}

    def stream(self, chunk: Tensor, state: dict) -> Tensor:
        x = torch.cat([state.get("pending", chunk[..., :0]), chunk], dim=-1)
        whole = x.shape[-1] - x.shape[-1] % HOP
        state["pending"] = x[..., whole:]
        if whole == 0:
            return x.new_zeros(x.shape[0], DIM, 0)
        frames = rearrange(x[..., :whole], "b 1 (f h) -> b h f", h=HOP)
        out = self.net(frames, state.get("past"))
        state["past"] = frames[..., -1:]
        return out

    def flush(self, state: dict) -> Tensor:
        pending = state.get("pending")
        if pending is None or pending.shape[-1] == 0:
            return torch.zeros(1 if pending is None else pending.shape[0], DIM, 0)
        return self.stream(pending.new_zeros(*pending.shape[:-1], HOP - pending.shape[-1]),
                           state)


class FrameDecoder(nn.Module, Decoder):
    """Latent ``(batch, DIM, frames)`` -> ``(batch, 1, frames * HOP)``."""

    dim = DIM

    def __init__(self) -> None:
        super().__init__()
        self.net = CausalFrames(DIM, HOP)

    def forward(self, latent: Tensor, past: Tensor | None = None) -> Tensor:
        return rearrange(self.net(latent, past), "b h f -> b 1 (f h)")

    def stream_state(self) -> dict:
        return {}

    def stream(self, latent: Tensor, state: dict) -> Tensor:
        out = self.forward(latent, state.get("past"))
        state["past"] = latent[..., -1:]
        return out


def tiny_codec(quantized: bool = True) -> AudioAutoencoder:
    torch.manual_seed(0)
    rvq = ResidualVQ(dim=DIM, num_codebooks=3, codebook_size=16) if quantized else None
    model = AudioAutoencoder(FrameEncoder(), FrameDecoder(), rvq, sample_rate=RATE)
    if rvq is not None:
        rvq.train()(model.encoder(torch.randn(4, 1, 4000)))  # k-means init of the codebooks
    return model.eval()


@pytest.fixture(scope="module")
def codec():
    return tiny_codec()


@pytest.fixture(scope="module")
def autoencoder():
    return tiny_codec(quantized=False)
