"""rae.autoencoder: the contracts its presets claim, the encoder geometry handed to the
decoder, vocoder wiring, training-only noise augmentation, and the spectrogram path."""

from __future__ import annotations

import json
import re

import pytest
import torch
from audio_plugin_rae.model import RAEAutoencoder
from audio_plugin_rae.speech import HubertEncoder
from audio_plugin_rae.vocoder import GriffinLimVocoder
from conftest import PLUGIN, noise

from audio_core.config import load_config
from audio_core.errors import ConfigError
from audio_core.models.build import build_model
from audio_core.tasks.base import weighted_losses


def build(registry, preset="rae.wav2vec2_tiny", *overrides, seed=0):
    cfg = load_config(preset, list(overrides), registry=registry, check_params=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_model(cfg, registry)


@pytest.mark.parametrize("preset", ["rae.wav2vec2_tiny", "rae.hubert_tiny",
                                    "rae.spectrogram_tiny"])
def test_tiny_presets_meet_the_autoencoder_contract(preset):
    assert PLUGIN.check_model(preset, ("model.decoder.params.depth=1",)) == [
        "autoencoder", "reconstruct"]


def test_the_decoder_gets_the_encoders_geometry(registry):
    model = build(registry)
    assert isinstance(model, RAEAutoencoder)
    assert (model.latent_dim, model.hop_length, model.frame_rate) == (64, 320, 50.0)
    assert (model.decoder.dim, model.decoder.hop_length, model.decoder.window,
            model.decoder.tokens_per_step) == (64, 320, 50, 1)
    spectro = build(registry, "rae.spectrogram_tiny")
    assert (spectro.decoder.dim, spectro.decoder.hop_length, spectro.decoder.window,
            spectro.decoder.tokens_per_step) == (64, 256, 64, 8)
    assert isinstance(spectro.vocoder, GriffinLimVocoder)
    assert (spectro.vocoder.n_fft, spectro.vocoder.hop_length, spectro.vocoder.n_mels,
            spectro.vocoder.n_iter) == (1024, 256, 64, 16)
    hubert = build(registry, "rae.hubert_tiny")
    assert isinstance(hubert.encoder_module(), HubertEncoder)


@pytest.mark.parametrize(("preset", "base"), [("rae.hubert_tiny", "rae.wav2vec2_tiny"),
                                              ("rae.hubert_base", "rae.wav2vec2_base")])
def test_hubert_presets_keep_the_wav2vec2_encoder_settings(registry, preset, base):
    # renaming model.encoder in an `extends` replaces its params: the preset repeats them
    hubert, wav2vec2 = (load_config(p, [], registry=registry).model.encoder
                        for p in (preset, base))
    assert hubert.name == "rae.hubert" and wav2vec2.name == "rae.wav2vec2"
    same = {k: v for k, v in wav2vec2.params.items() if k != "pretrained"}
    assert {k: hubert.params[k] for k in same} == same
    assert ("pretrained" in hubert.params) == ("pretrained" in wav2vec2.params)


def test_the_encoder_and_vocoder_are_held_outside_the_weights(registry):
    model = build(registry, "rae.spectrogram_tiny")
    keys = set(model.state_dict())
    assert keys and all(k.startswith(("decoder.", "normalizer.")) for k in keys)
    assert dict(model.frozen_modules()).keys() == {"encoder", "vocoder"}
    encoder_params = {id(p) for p in model.encoder.parameters()}
    assert encoder_params and not encoder_params & {id(p) for p in model.parameters()}


@pytest.mark.parametrize(("overrides", "message", "path"), [
    (["model.decoder.params.dim=12"], "model.decoder.params.dim=12 does not match the "
                                      "encoder's dim 64", "model.decoder.params.dim"),
    (["model.vocoder={name: rae.griffin_lim}"], "model.vocoder is set but the decoder "
                                                 "outputs a waveform", "model.vocoder"),
])
def test_wiring_mistakes_are_config_errors(registry, overrides, message, path):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        build(registry, "rae.wav2vec2_tiny", *overrides)
    assert info.value.path == path


def test_a_vocoder_on_another_mel_is_refused(registry):
    with pytest.raises(ConfigError, match=re.escape("model.vocoder works on {'n_mels': 32}")):
        build(registry, "rae.spectrogram_tiny", "model.vocoder.params.n_mels=32")


def test_noise_augmentation_is_on_in_training_only(registry):
    model = build(registry)
    assert model.noise_tau == 0.3
    latent = torch.zeros(512, 4, 50)
    model.train()
    sigma = model.augment(latent).std(dim=(1, 2))  # one sigma ~ U[0, 0.3] per example
    assert float(sigma.min()) >= 0 and float(sigma.max()) <= 0.3 * 1.1
    assert abs(float(sigma.mean()) - 0.15) < 0.02 and float(sigma.std()) > 0.06
    wave = noise(2, 1, 8000)
    out = model(wave)
    torch.testing.assert_close(out.latent, model.encode_latent(wave))  # noise after latent
    assert not torch.allclose(out.reconstruction, model(wave).reconstruction)
    model.eval()
    assert torch.equal(model.augment(latent), latent)
    assert torch.equal(model.reconstruct(wave), model.reconstruct(wave))
    with torch.no_grad():
        assert torch.equal(model(wave).reconstruction, model.reconstruct(wave))


def test_spectrogram_decoder_trains_on_the_log_mel_and_vocodes(registry):
    model = build(registry, "rae.spectrogram_tiny", "model.params.noise_tau=0").train()
    wave = noise(2, 1, 8000)
    out = model(wave)
    mel, target = out.intermediates["decoder.mel"], out.intermediates["decoder.mel_target"]
    assert mel.shape == target.shape == (2, 64, 32)  # 32 tokens = 4 steps of 8 mel frames
    assert mel.requires_grad and not target.requires_grad
    assert out.reconstruction.shape == (2, 1, 8000) and not out.reconstruction.requires_grad
    torch.testing.assert_close(target, model.decoder.target_mel(wave, 32))
    cfg = load_config("rae.spectrogram_tiny", registry=registry)
    losses = [(registry.build("loss", ref.name, ref.params), ref.weight)
              for ref in cfg.model.losses]
    loss, logs = weighted_losses(losses, out.reconstruction, wave, None, out)
    assert set(logs) == {"loss/mel_l1"}
    loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
    model.eval()
    assert torch.equal(model.decode(model.encode(wave), 8000), model.reconstruct(wave))


def test_an_adversarial_decoder_trains_with_cores_discriminators(registry, tmp_path):
    # the optional adversarial stage 1: task core.adversarial, D from model.discriminators
    from audio_core.engine.trainer import Trainer

    cfg = load_config("rae.wav2vec2_tiny", [
        f"run.output_dir={tmp_path}", "task.name=core.adversarial",
        "task.params={warmup_steps: 1, feature_matching_weight: 1.0}",
        "model.discriminators=[{name: core.msd, params: {scales: 1, width: 8, layers: 2, "
        "max_width: 16}}]", "model.decoder.params.depth=1", "data.batch_size=2",
        "data.segment_seconds=0.5", "data.train.params={num_items: 8}", "data.val=null",
        "train.max_steps=3", "train.log_every=1", "train.checkpoint_every=3",
        "train.trackers=[jsonl]"], registry=registry, check_params=True)
    trainer = Trainer(cfg, registry=registry)
    trainer.fit()
    assert trainer.step == 3 and set(trainer.engines) == {"generator", "discriminator"}
    logged = [json.loads(line)["metrics"] for line in
              (tmp_path / cfg.run.name / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*logged)
    assert any(k.startswith("loss/discriminator") for k in keys), sorted(keys)
    assert any("feature_matching" in k for k in keys), sorted(keys)
    fresh = build(registry).encoder_module().state_dict()
    final = trainer.task.model.encoder_module().state_dict()
    assert fresh.keys() == final.keys()
    assert all(torch.equal(fresh[k], final[k]) for k in fresh)  # the encoder is untouched
