"""Models are built by their own class from the config: the model type, slots and params."""

from __future__ import annotations

import pytest
import torch

from audio_core.config import load_config
from audio_core.errors import ConfigError
from audio_core.models import AudioAutoencoder, Autoencoder, Codec, capabilities
from audio_core.models.build import build_model, check_slots, model_class, model_type
from audio_core.plugins import get_registry

CONV = {"name": "core.conv", "params": {"dim": 4, "width": 2, "ratios": [2, 2]}}


def _cfg(**model):
    return load_config({"model": {"encoder": CONV, "decoder": CONV,
                                  "losses": [{"name": "core.l1"}], **model}})


def test_the_task_names_the_model_and_model_type_overrides_it():
    cfg = _cfg()
    assert model_type(cfg) == "core.autoencoder" and model_class(cfg) is AudioAutoencoder
    frozen = load_config({"model": {"encoder": CONV, "decoder": CONV,
                                    "losses": [{"name": "core.l1"}]},
                          "task": {"name": "core.frozen_encoder"}})
    assert model_type(frozen) == "core.frozen_encoder"
    assert model_type(_cfg(type="core.frozen_encoder")) == "core.frozen_encoder"


def test_an_autoencoder_is_a_codec_only_with_a_discrete_quantizer():
    plain = build_model(_cfg())
    assert isinstance(plain, Autoencoder) and isinstance(plain, Codec)
    assert capabilities(plain) == ["autoencoder", "reconstruct"]
    rvq = build_model(_cfg(quantizer={"name": "core.rvq", "params": {"dim": 4}}))
    assert capabilities(rvq) == ["autoencoder", "codec", "reconstruct"]
    x = torch.randn(2, 1, 37)
    assert rvq.encode(x).shape == (2, 4, 10) and rvq.reconstruct(x).shape == x.shape
    assert rvq.codec_spec().hop_length == 4 and rvq.encode_codes(x).dtype == torch.int64


def test_slots_are_checked_against_the_model_and_task():
    registry = get_registry()
    check_slots(_cfg(), registry)
    with pytest.raises(ConfigError, match=r"model\.decoder is required by model core\.autoencoder"):
        check_slots(load_config({"model": {"encoder": CONV, "losses": [{"name": "core.l1"}]}}),
                    registry)
    with pytest.raises(ConfigError, match=r"model\.sampler is set but model core\.autoencoder"):
        check_slots(_cfg(sampler={"name": "core.euler"}), registry)
    with pytest.raises(ConfigError, match=r"model\.discriminators is set"):
        check_slots(_cfg(discriminators=[{"name": "core.msd"}]), registry)


def test_model_params_are_checked_with_path_and_suggestion():
    with pytest.raises(ConfigError, match=r"model\.params\.noise_ta.*did you mean 'noise_tau'"):
        load_config({"model": {"encoder": CONV, "decoder": CONV, "losses": [{"name": "core.l1"}],
                               "params": {"noise_ta": 0.1}},
                     "task": {"name": "core.frozen_encoder"}}, check_params=True)
    with pytest.raises(ConfigError, match=r"unknown model 'core\.vae'.*at model\.type"):
        load_config({"model": {"type": "core.vae"}})


def test_the_model_fingerprint_covers_type_params_and_every_inference_slot():
    from audio_core.models.fingerprint import model_fingerprint

    def fingerprint(**model):
        cfg = load_config({"model": {"encoder": CONV, "decoder": CONV,
                                     "losses": [{"name": "core.l1"}], **model},
                           "task": {"name": "core.frozen_encoder"}})
        torch.manual_seed(0)
        built = build_model(cfg)
        built.config = cfg
        return model_fingerprint(built)

    base = fingerprint()
    assert base == fingerprint()  # same config and weights: same identity
    assert base != fingerprint(params={"noise_tau": 0.5})  # same weights, other params
    assert base == fingerprint(losses=[{"name": "core.mel"}])  # training parts do not count
