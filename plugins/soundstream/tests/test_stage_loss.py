"""The auxiliary decoder-stage loss (soundstream.aux) and how it meets the decoder: through
the model output's ``intermediates``, handed to losses that declare ``wants_output``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from audio_plugin_soundstream import stage_loss as aux
from audio_plugin_soundstream.seanet import SEANetDecoder, SEANetEncoder

from audio_core.models.autoencoder import AudioAutoencoder
from audio_core.tasks.base import reconstruction_objective

SMALL = {"dim": 8, "width": 4, "ratios": (2, 4)}


def test_aux_loss_uses_the_decoders_stages_and_trains_them(registry):
    loss = registry.build("loss", "soundstream.aux", {})
    model = AudioAutoencoder(SEANetEncoder(**SMALL), SEANetDecoder(**SMALL, aux_outputs=True),
                             sample_rate=16000)
    x = torch.randn(2, 1, 100)
    out = model.train()(x)
    assert [tuple(s.shape) for s in out.intermediates["decoder.stages"]] == [
        (2, 8, 52), (2, 4, 104)]
    assert out.intermediates["decoder.stage_factors"] == [2, 1]
    assert model.decoder.intermediates() == {}  # handed over: nothing outlives the step
    # the way tasks call losses: the record goes to losses that want it, by keyword
    total, logs = reconstruction_objective([(loss, 1.0)], out, x,
                                           torch.ones(2, 100, dtype=torch.bool))
    assert {"loss/aux", "loss/aux_stage0", "loss/aux_stage1"} <= logs.keys()
    total.backward()
    stage_conv = model.decoder.stages[0][1].conv
    assert stage_conv.parametrizations.weight.original1.grad is not None


def test_aux_loss_without_stage_outputs_says_what_to_configure():
    model = AudioAutoencoder(SEANetEncoder(**SMALL), SEANetDecoder(**SMALL),
                             sample_rate=16000).train()
    x = torch.randn(1, 1, 64)
    out = model(x)
    assert out.intermediates == {}
    with pytest.raises(RuntimeError, match="aux_outputs: true"):
        aux.DecoderStageLoss()(out.reconstruction, x, output=out)


def test_aux_target_is_the_pooled_channel_mean():
    stages = [torch.ones(1, 3, 4) * 0.5, torch.zeros(1, 2, 16)]
    output = SimpleNamespace(intermediates={"decoder.stages": stages,
                                            "decoder.stage_factors": [4, 1]})
    x = torch.full((1, 1, 14), 0.5)
    got = aux.DecoderStageLoss()(x, x, output=output)
    # stage 0 matches the pooled target except the zero-padded tail; stage 1 misses by 0.5
    assert float(got.parts["stage1"]) == pytest.approx(0.5)
    assert float(got.parts["stage0"]) == pytest.approx(abs(0.5 - 0.25) / 4)


def test_eval_forward_keeps_nothing():
    model = AudioAutoencoder(SEANetEncoder(**SMALL), SEANetDecoder(**SMALL, aux_outputs=True),
                             sample_rate=16000)
    assert model.eval()(torch.randn(1, 1, 64)).intermediates == {}
