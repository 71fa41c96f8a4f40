"""Components named in a config are built through the registry, plugins included."""

import pytest
import torch

from audio_core.config import build_component, load_config
from audio_core.errors import ConfigError


def test_third_party_encoder_builds_from_a_yaml_config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("extends: demo\n"
                    "model:\n"
                    "  encoder:\n"
                    "    name: example.frame_encoder\n"
                    "    params: {dim: 12, hop_length: 80}\n"
                    "  decoder: {name: core.conv, params: {dim: 12, ratios: [80]}}\n"
                    "  losses: [{name: core.l1}]\n")
    cfg = load_config(path, check_params=True)
    encoder = build_component(cfg.model.encoder, "encoder", "model.encoder")
    assert (encoder.dim, encoder.hop_length) == (12, 80)
    latent = encoder(torch.randn(2, 1, 1600))
    assert latent.shape == (2, 12, 20)


def test_bad_param_value_is_reported_by_the_factory(tmp_path):
    cfg = load_config({"model": {"encoder": {"name": "example.frame_encoder",
                                             "params": {"dim": 0}}}})
    with pytest.raises(ValueError, match="dim"):
        build_component(cfg.model.encoder, "encoder", "model.encoder")


def test_unknown_param_names_the_config_path():
    cfg = load_config({"model": {"encoder": {"name": "example.frame_encoder",
                                             "params": {"hop": 80}}}})
    with pytest.raises(ConfigError, match=r"model\.encoder\.params\.hop.*hop_length"):
        build_component(cfg.model.encoder, "encoder", "model.encoder")
