"""mousai.diffusion_autoencoder as an audio-core model: contracts, decoding, presets, config
errors, and loading an export without the training task."""

from __future__ import annotations

import math

import pytest
import torch
from audio_plugin_mousai.model import DiffusionAutoencoder
from audio_plugin_mousai.task import DiffusionAutoencoderTask, pad_to_multiple
from conftest import PLUGIN, TINY_AE

import audio_core
from audio_core.config import load_config
from audio_core.engine.export import save_export
from audio_core.errors import ConfigError
from audio_core.models.build import build_model


def tiny(registry, *overrides: str) -> DiffusionAutoencoder:
    cfg = load_config("mousai.tiny_dae", [*TINY_AE, *overrides], registry=registry,
                      check_params=True)
    torch.manual_seed(0)
    return build_model(cfg, registry).eval()


def test_plugin_registers_its_components(manager, registry):
    assert set(manager.plugins["mousai"].components) == {
        "mousai.diffusion_autoencoder", "mousai.magnitude", "mousai.unet", "mousai.minilm",
        "mousai.t5", "mousai.autoencoder", "mousai.tiny_dae", "mousai.tiny_generator",
        "mousai.generator"}
    for kind, name in {"model": "diffusion_autoencoder", "encoder": "magnitude",
                       "denoiser": "unet", "conditioner": "minilm", "task": "autoencoder",
                       "preset": "autoencoder"}.items():
        assert (kind, f"mousai.{name}") in registry, kind


def test_tiny_preset_meets_the_autoencoder_contract():
    assert PLUGIN.check_model("mousai.tiny_dae", TINY_AE, seconds=0.1) == [
        "autoencoder", "reconstruct"]


def test_tiny_model_geometry(registry):
    model = tiny(registry)
    assert (model.sample_rate, model.channels) == (16000, 2)
    assert (model.hop_length, model.latent_dim, model.compression) == (256, 8, 64.0)
    assert model.length_multiple == 256 and model.decode_steps == 2 and model.scale == 4.0
    assert type(model.objective).__name__ == "VDiffusionObjective"
    assert type(model.sampler).__name__ == "DDIMSampler"


def test_decode_is_seeded_and_takes_steps(registry):
    model = tiny(registry)
    for p in model.denoiser.patch_out.parameters():  # a zero-initialised output says nothing
        torch.nn.init.normal_(p, std=0.05)
    latent = model.encode(0.1 * torch.randn(2, 2, 1000))
    assert latent.shape == (2, 8, 4)
    one = model.decode(latent, 1000, steps=3, seed=1)
    assert one.shape == (2, 2, 1000) and one.abs().max() <= 1.0  # clamped to the audio range
    assert torch.equal(one, model.decode(latent, 1000, steps=3, seed=1))
    assert not torch.equal(one, model.decode(latent, 1000, steps=3, seed=2))
    assert not torch.equal(one, model.decode(latent, 1000, steps=4, seed=1))
    assert torch.equal(model.decode(latent, 1000), model.decode(latent, 1000, steps=2))
    assert not torch.equal(one[0], one[1])  # each example its own noise
    calls = []
    model.decode(latent, steps=5, progress=lambda i, total: calls.append((i, total)))
    assert calls == [(i, 5) for i in range(1, 6)]
    assert model.decode(latent).shape == (2, 2, 4 * 256)
    with pytest.raises(ValueError, match="decode steps must be >= 1"):
        model.decode(latent, steps=0)


def test_decode_pads_the_latent_to_the_unet_grid(registry):
    """The U-Net needs lengths in multiples of 2 frames here: odd frame counts decode."""
    model = tiny(registry, "model.denoiser.params.factors=[1,4,4,2]",
                 "model.denoiser.params.channels=[8,8,8,8]",
                 "model.denoiser.params.items=[1,1,1,1]",
                 "model.denoiser.params.attentions=[0,0,0,0]")
    assert model.length_multiple == 512
    latent = model.encode(torch.randn(1, 2, 3 * 256))
    assert model.decode(latent, 700).shape == (1, 2, 700)


def test_the_training_forward_encodes_the_clean_audio(registry):
    model = tiny(registry).train()
    audio = 0.1 * torch.randn(2, 2, 512)
    noisy = torch.randn_like(audio)
    out = model(noisy, torch.tensor([0.3, 0.7]), audio)
    assert out.shape == audio.shape
    out.square().sum().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_pad_to_multiple_masks_the_padding():
    audio, mask = pad_to_multiple(torch.ones(2, 1, 5), None, 4)
    assert audio.shape == (2, 1, 8) and mask.tolist() == [[True] * 5 + [False] * 3] * 2
    same, none = pad_to_multiple(torch.ones(1, 1, 8), None, 4)
    assert same.shape == (1, 1, 8) and none is None


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.denoiser.params.inject_depth=1"], "level 1 has one frame per 64 samples but the "
                                               "encoder's latent one per 256"),
    (["model.denoiser.params.inject_depth=null"], "model.denoiser must inject"),
    (["model.params.decode_steps=0"], "model.params.decode_steps must be >= 1"),
    (["model.params.scale=0"], "model.params.scale must be > 0"),
])
def test_bad_configs_name_the_key(registry, overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny(registry, *overrides)


def test_task_params_are_checked(registry):
    cfg = load_config("mousai.tiny_dae", registry=registry)
    with pytest.raises(ConfigError, match=r"task\.params\.val_decode_steps"):
        DiffusionAutoencoderTask(cfg=cfg, registry=registry, val_decode_steps=0)


def test_full_presets_have_the_original_sizes(registry):
    ae = load_config("mousai.autoencoder", registry=registry, check_params=True)
    unet = ae.model.denoiser.params
    assert unet["channels"] == [256, 512, 512, 512, 1024, 1024, 1024]
    assert unet["patch_size"] == 64 and unet["inject_depth"] == 4
    enc = ae.model.encoder.params
    assert enc["latent_dim"] == 32 and enc["stft_hop"] * math.prod(enc["factors"]) == 1024
    assert (ae.data.sample_rate, ae.data.channels) == (48000, 2)
    assert round(ae.data.segment_seconds * 48000) % (64 * 2**6) == 0
    assert ae.task.name == "mousai.autoencoder" and ae.train.ema_decay > 0
    gen = load_config("mousai.generator", registry=registry, check_params=True)
    unet = gen.model.denoiser.params
    assert unet["channels"] == [128, 256, 512, 512, 1024, 1024]
    assert unet["attentions"] == [0, 0, 1, 1, 1, 1]
    assert (unet["heads"], unet["head_features"]) == (12, 64)
    assert gen.model.conditioner.name == "mousai.t5"
    assert gen.model.conditioner.params["max_tokens"] == 128
    assert gen.task.name == "core.diffusion" and gen.task.params["cond_dropout"] == 0.1
    assert gen.model.params["guidance"] == 5.0 and gen.train.ema_decay > 0


def test_the_full_autoencoder_preset_builds_at_a_tiny_width(registry):
    """The original wiring (48 kHz stereo, patches of 64, 7 levels, injection at level 4)
    with every width shrunk to 8."""
    shrink = ["model.denoiser.params.channels=[8,8,8,8,8,8,8]", "model.denoiser.params.emb_dim=16",
              "model.encoder.params.widths=[8,8,8]"]
    cfg = load_config("mousai.autoencoder", shrink, registry=registry, check_params=True)
    model = build_model(cfg, registry).eval()
    assert (model.hop_length, model.latent_dim, model.compression) == (1024, 32, 64.0)
    assert model.length_multiple == 4096 and model.denoiser.downsampling(4) == 1024
    latent = model.encode(torch.randn(1, 2, 5000))
    assert latent.shape == (1, 32, 5)
    assert model.decode(latent, 5000, steps=1).shape == (1, 2, 5000)


def test_load_builds_the_model_and_never_the_task(tmp_path, registry, monkeypatch):
    cfg = load_config("mousai.tiny_dae", TINY_AE, registry=registry, check_params=True)
    torch.manual_seed(1)
    model = build_model(cfg, registry).eval()
    save_export(model, cfg, tmp_path, registry=registry)

    def refuse(self, **kwargs):
        raise AssertionError("loading a model must not construct its training task")

    monkeypatch.setattr(DiffusionAutoencoderTask, "__init__", refuse)
    loaded = audio_core.load(tmp_path, registry=registry)
    assert isinstance(loaded, DiffusionAutoencoder) and not loaded.training
    wave = 0.1 * torch.randn(1, 2, 600)
    assert torch.equal(loaded.encode(wave), model.encode(wave))
    assert torch.equal(loaded.reconstruct(wave), model.reconstruct(wave))
