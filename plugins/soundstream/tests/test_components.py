"""Registrations, presets and the bitrate arithmetic."""

from __future__ import annotations

import pytest
import torch

from audio_core.config import load_config
from audio_core.models.build import build_model

PRESETS = ("soundstream.tiny", "soundstream.24khz", "soundstream.16khz_speech",
           "soundstream.demo_6kbps")


def test_components_are_registered(registry):
    names = {(s.kind, s.name) for s in registry.specs()}
    assert {("encoder", "soundstream.encoder"), ("decoder", "soundstream.decoder"),
            ("encoder", "soundstream.spectral_encoder"),
            ("decoder", "soundstream.spectral_decoder"), ("loss", "soundstream.aux")} <= names
    # the presets' residual VQ is core's; the plugin's quantizers are those of imported
    # models (DAC's factorised one, Mimi's split one)
    assert {n for k, n in names if k == "quantizer" and n.startswith("soundstream.")} == \
        {"soundstream.factorized_rvq", "soundstream.split_rvq"}
    assert {("importer", "soundstream.encodec_hf"), ("importer", "soundstream.dac_hf"),
            ("importer", "soundstream.mimi_hf"), ("encoder", "soundstream.mimi_encoder"),
            ("decoder", "soundstream.mimi_decoder"),
            ("exporter", "soundstream.encodec_hf"), ("exporter", "soundstream.dac_hf"),
            ("exporter", "soundstream.mimi_hf"), ("exporter", "soundstream.onnx_streaming"),
            ("exporter", "soundstream.encodec_onnx_streaming"),
            ("model", "soundstream.encodec")} <= names
    assert {f"preset:{p}" for p in PRESETS} <= {f"{k}:{n}" for k, n in names}


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_validate_with_params(registry, preset):
    cfg = load_config(preset, registry=registry, check_params=True)
    assert cfg.model.quantizer.name == "core.rvq"


def model_of(registry, preset):
    cfg = load_config(preset, registry=registry)
    return cfg, build_model(cfg, registry)


def test_24khz_preset_is_6kbps_at_75hz_with_about_15m_parameters(registry):
    cfg, model = model_of(registry, "soundstream.24khz")
    assert model.hop_length == 320 and model.frame_rate == 75.0
    assert model.quantizer.num_codebooks == 8 and model.quantizer.codebook_size == 1024
    assert model.quantizer.bitrate(model.frame_rate) == 6000.0
    assert [model.quantizer.bitrate(model.frame_rate, n) for n in (1, 4)] == [750.0, 3000.0]
    params = sum(p.numel() for p in model.parameters())
    assert 13e6 < params < 17e6, params
    assert [d.name for d in cfg.model.discriminators] == ["core.msd", "core.mpd", "core.msstft"]


def test_16khz_speech_preset_is_4kbps(registry):
    _, model = model_of(registry, "soundstream.16khz_speech")
    assert model.frame_rate == 50.0 and model.quantizer.bitrate(model.frame_rate) == 4000.0


def test_demo_preset_is_6kbps_at_125hz_on_the_demo_corpus(registry):
    """The README main job: 8 x 64 codes at hop 128 (16 kHz) between the STFT-domain
    encoder and decoder, reconstruction losses only, trained on data/demo's train split and
    validated on its val split."""
    cfg, model = model_of(registry, "soundstream.demo_6kbps")
    assert model.hop_length == 128 and model.frame_rate == 125.0
    assert model.quantizer.bitrate(model.frame_rate) == 6000.0
    assert (cfg.model.encoder.name, cfg.model.decoder.name) == (
        "soundstream.spectral_encoder", "soundstream.spectral_decoder")
    assert cfg.task.name == "core.autoencoder" and not cfg.model.discriminators
    assert [loss.name for loss in cfg.model.losses] == ["core.mel", "core.l1"]
    assert (cfg.data.train.name, cfg.data.train.params["split"]) == ("core.split_folder",
                                                                    "train")
    assert cfg.data.val.params["split"] == "val"
    assert cfg.data.train.params["root"] == cfg.data.val.params["root"] == "data/demo"
    assert 1.0e6 < sum(p.numel() for p in model.parameters()) < 1.4e6


def test_tiny_preset_builds_and_runs(registry):
    _, model = model_of(registry, "soundstream.tiny")
    x = torch.randn(2, 1, 1234)
    out = model(x)
    assert out.reconstruction.shape == x.shape
    assert out.quantized.codes.shape == (2, 4, -(-1234 // model.hop_length))
    assert out.quantized.bits_per_frame == 24.0
