"""The auxiliary decoder-stage loss (soundstream.aux) and how it meets the decoder."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_soundstream import stage_loss as aux
from audio_plugin_soundstream.seanet import SEANetDecoder, SEANetEncoder

from audio_core.models.autoencoder import AudioAutoencoder

SMALL = {"dim": 8, "width": 4, "ratios": (2, 4)}


def test_aux_loss_uses_the_decoders_stages_and_trains_them(registry):
    loss = registry.build("loss", "soundstream.aux", {})
    model = AudioAutoencoder(SEANetEncoder(**SMALL), SEANetDecoder(**SMALL, aux_outputs=True))
    x = torch.randn(2, 1, 100)
    out = model.train()(x)
    got = loss(out.reconstruction, x, torch.ones(2, 100, dtype=torch.bool))
    assert set(got.parts) == {"stage0", "stage1"} and got.value > 0
    got.value.backward()
    stage_conv = model.decoder.stages[0][1].conv
    assert stage_conv.parametrizations.weight.original1.grad is not None
    with pytest.raises(RuntimeError, match="aux_outputs"):  # consumed: no silent reuse
        loss(out.reconstruction, x)


def test_aux_target_is_the_pooled_channel_mean():
    stages = [torch.ones(1, 3, 4) * 0.5, torch.zeros(1, 2, 16)]
    aux.publish(stages, [4, 1])
    x = torch.full((1, 1, 14), 0.5)
    got = aux.DecoderStageLoss()(x, x)
    # stage 0 matches the pooled target except the zero-padded tail; stage 1 misses by 0.5
    assert float(got.parts["stage1"]) == pytest.approx(0.5)
    assert float(got.parts["stage0"]) == pytest.approx(abs(0.5 - 0.25) / 4)


def test_eval_forward_publishes_nothing():
    dec = SEANetDecoder(**SMALL, aux_outputs=True).eval()
    aux.consume()
    dec(torch.randn(1, 8, 3))
    assert aux.consume() is None
