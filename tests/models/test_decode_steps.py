"""``decode_steps``: a stage-2 model passes sampler steps to a stage-1 model that samples when
decoding (``LatentDiffusion.generate(..., decode_steps=N)``, ``audio-core generate
--decode-steps N``); a one-pass stage-1 decoder refuses them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from audio_core.cli import main
from audio_core.components.denoisers import ConvDenoiser
from audio_core.contracts.models import Autoencoder
from audio_core.diffusion import EulerSampler, RectifiedFlowObjective
from audio_core.models.latent_diffusion import GenerationError, LatentDiffusion

HOP, DIM, RATE = 4, 2, 8000


class OnePassDecoder(Autoencoder):
    """A stage-1 stand-in: latent frames repeated ``HOP`` times, channel mean."""

    hop_length, latent_dim = HOP, DIM

    def __init__(self) -> None:
        super().__init__(sample_rate=RATE, channels=1)
        self.gain = nn.Parameter(torch.ones(()))

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, **params: Any) -> OnePassDecoder:
        return cls()

    def encode(self, waveform: Tensor) -> Tensor:
        return waveform[..., ::HOP].repeat(1, DIM, 1)

    def decode(self, latent: Tensor, length: int | None = None) -> Tensor:
        wave = self.gain * latent.mean(1, keepdim=True).repeat_interleave(HOP, -1)
        return wave[..., :length]


class SamplingDecoder(OnePassDecoder):
    """A stage-1 stand-in whose decode takes sampler ``steps`` (and records them)."""

    decode_steps = 7

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int | None] = []

    def decode(self, latent: Tensor, length: int | None = None,
               steps: int | None = None) -> Tensor:
        self.calls.append(steps)
        return super().decode(latent, length) * (steps or self.decode_steps)


def stage2(stage1: Autoencoder) -> LatentDiffusion:
    torch.manual_seed(0)
    return LatentDiffusion(ConvDenoiser(dim=DIM, hidden=8, blocks=1), RectifiedFlowObjective(),
                           EulerSampler(), sample_rate=RATE, channels=1, latent_dim=DIM,
                           hop_length=HOP, steps=2, seconds=0.01, stage1=stage1).eval()


def test_generate_passes_decode_steps_to_a_sampling_stage1():
    first = SamplingDecoder()
    model = stage2(first)
    default = model.generate(seed=3)
    three = model.generate(seed=3, decode_steps=3)
    assert first.calls == [None, 3]
    assert default.shape == three.shape == (1, 1, 80)
    torch.testing.assert_close(three * 7, default * 3)  # the same latent, decoded by steps
    with pytest.raises(GenerationError, match="decode_steps must be >= 1"):
        model.generate(decode_steps=0)


def test_a_one_pass_stage1_refuses_decode_steps_before_sampling():
    model = stage2(OnePassDecoder())
    assert model.generate(seed=0).shape == (1, 1, 80)
    with pytest.raises(GenerationError, match="OnePassDecoder, which decodes in one pass"):
        model.generate(decode_steps=4)


def test_the_generate_command_forwards_decode_steps(tmp_path, monkeypatch, capsys):
    first = SamplingDecoder()
    model = stage2(first)
    monkeypatch.setattr("audio_core.models.loading.load", lambda *a, **k: model)
    out = tmp_path / "x.wav"
    assert main(["generate", "m", "--steps", "2", "--decode-steps", "5", "-o", str(out)]) == 0
    settings = json.loads(capsys.readouterr().out)
    assert first.calls == [5] and settings["decode_steps"] == 5 and out.exists()
    assert main(["generate", "m", "-o", str(out), "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["decode_steps"] == 7  # the stage-1 default
    with pytest.raises(SystemExit) as info:  # refused when the arguments are parsed
        main(["generate", "m", "--decode-steps", "0", "-o", str(out), "--overwrite"])
    assert info.value.code == 2
    assert "--decode-steps: must be an integer >= 1" in capsys.readouterr().err


def test_the_generate_command_refuses_decode_steps_for_a_one_pass_stage1(tmp_path, monkeypatch,
                                                                        capsys):
    monkeypatch.setattr("audio_core.models.loading.load", lambda *a, **k: stage2(OnePassDecoder()))
    out = tmp_path / "x.wav"
    assert main(["generate", "m", "--decode-steps", "5", "-o", str(out)]) == 1
    assert "decodes in one pass" in capsys.readouterr().err and not out.exists()
