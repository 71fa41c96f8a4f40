"""bsq.tokenizer as an audio-core model: the contracts it claims, its slots and params in a
run config, and loading an export without the training task."""

from __future__ import annotations

import re

import pytest
import torch
from audio_plugin_bsq.model import BSQTokenizer
from audio_plugin_bsq.task import BSQTokenizerTask
from audio_plugin_bsq.vocoder import GriffinLimVocoder
from conftest import PLUGIN

import audio_core
from audio_core.config import load_config
from audio_core.contracts.models import capabilities
from audio_core.engine.export import save_export
from audio_core.errors import ConfigError
from audio_core.models.build import build_model

#: bsq.tiny, faster: one transformer layer each way, 2 Griffin-Lim iterations.
FAST = ("model.encoder.params.depth=1", "model.decoder.params.depth=1",
        "model.vocoder.params.n_iter=2", "model.vocoder.params.nnls_iter=2")


def test_tiny_preset_meets_the_codec_contract():
    assert PLUGIN.check_model("bsq.tiny", FAST) == ["codec", "reconstruct"]


def test_the_task_names_the_model_and_keeps_only_training_settings(registry):
    cfg = load_config("bsq.tiny", FAST, registry=registry, check_params=True)
    assert cfg.model.type is None and BSQTokenizerTask.model_type == "bsq.tokenizer"
    model = build_model(cfg, registry)
    assert isinstance(model, BSQTokenizer) and capabilities(model) == ["codec", "reconstruct"]
    assert (model.n_fft, model.hop_length, model.n_mels, model.db_range) == (512, 160, 32,
                                                                             (-80.0, 0.0))
    assert (model.vocoder.n_iter, model.vocoder.n_fft, model.vocoder.n_mels) == (2, 512, 32)
    assert model.encoder.max_time_patches == 13  # 1 + 8000 // 160 = 51 frames of 4 per step
    task = BSQTokenizerTask(cfg=cfg, registry=registry, specaugment={"time_masks": 1})
    task.build_modules()
    assert task.specaugment.fill == -80.0  # the model's db_range floor


def test_vocoder_slot_defaults_to_griffin_lim_on_the_models_mel(registry):
    cfg = load_config("bsq.tiny", [*FAST[:2], "model.vocoder=null", "model.params.n_mels=16",
                                   "model.params.hop_length=128"],
                      registry=registry, check_params=True)
    vocoder = build_model(cfg, registry).vocoder
    assert isinstance(vocoder, GriffinLimVocoder) and vocoder.scale == "db"
    assert (vocoder.sample_rate, vocoder.n_fft, vocoder.hop_length, vocoder.n_mels,
            vocoder.n_iter) == (16000, 512, 128, 16, 32)


def test_a_vocoder_on_another_mel_is_refused(registry):
    cfg = load_config("bsq.tiny", ["model.vocoder.params.n_mels=64"], registry=registry)
    with pytest.raises(ValueError, match="'n_mels': 64"):
        build_model(cfg, registry)


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.quantizer=null"], "model.quantizer is required by model bsq.tokenizer"),
    (["model.losses=[{name: core.l1}]"], "model.losses is set but"),
    (["task.params.n_mels=32"], "task.params.n_mels"),  # the old place of the mel settings
    (["model.params.n_melz=32"], "n_melz"),
    (["model.vocoder.name=bsq.transformer"], "unknown vocoder 'bsq.transformer'"),
])
def test_config_validation_names_the_bad_key(registry, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("bsq.tiny", overrides, registry=registry, check_params=True)


def test_building_without_a_required_slot_names_it(registry):
    cfg = load_config("bsq.tiny", ["model.decoder=null"], registry=registry)
    with pytest.raises(ConfigError, match=re.escape("model.decoder is required")) as info:
        build_model(cfg, registry)
    assert info.value.path == "model.decoder"


def test_load_builds_the_model_and_never_the_task(tmp_path, registry, monkeypatch):
    cfg = load_config("bsq.tiny", FAST, registry=registry, check_params=True)
    torch.manual_seed(1)
    model = build_model(cfg, registry).eval()
    save_export(model, cfg, tmp_path, registry=registry)

    def refuse(self, **kwargs):
        raise AssertionError("loading a model must not construct its training task")

    monkeypatch.setattr(BSQTokenizerTask, "__init__", refuse)
    loaded = audio_core.load(tmp_path, registry=registry)
    assert isinstance(loaded, BSQTokenizer) and not loaded.training
    assert loaded.config.model.params["n_mels"] == 32
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    wave = 0.1 * torch.randn(1, 1, 4000)
    assert torch.equal(loaded.encode_codes(wave), model.encode_codes(wave))
    assert torch.equal(loaded.reconstruct(wave), model.reconstruct(wave))
