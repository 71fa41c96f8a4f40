"""Adversarial losses, the waveform discriminator, registrations and task parameters."""

from __future__ import annotations

import pytest
import torch

from audio_core.components.adversarial import (
    OBJECTIVES,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
)
from audio_core.components.discriminators import DiscriminatorList, WaveformDiscriminator
from audio_core.config import load_config
from audio_core.errors import ConfigError
from audio_core.models.build import build_model
from audio_core.models.frozen_encoder import FrozenEncoderAutoencoder, build_seeded
from audio_core.plugins import get_registry
from audio_core.tasks.adversarial import AdversarialCodecTask, split_halves

CODEC = {"name": "core.conv", "params": {"dim": 4, "width": 2, "ratios": [2, 2]}}


def test_hinge_values():
    ones = torch.ones(2, 1, 3)
    assert hinge_discriminator_loss([2 * ones], [-2 * ones]).item() == 0.0
    assert hinge_discriminator_loss([0 * ones], [0 * ones]).item() == 2.0
    assert hinge_discriminator_loss([ones, 0 * ones], [-ones, ones]).item() == 1.5
    assert hinge_generator_loss([3 * ones]).item() == -3.0


def test_least_squares_values():
    ones = torch.ones(4, 1, 2)
    assert least_squares_discriminator_loss([ones], [0 * ones]).item() == 0.0
    assert least_squares_discriminator_loss([0 * ones], [ones]).item() == 2.0
    assert least_squares_generator_loss([ones]).item() == 0.0
    assert least_squares_generator_loss([3 * ones]).item() == 4.0
    assert set(OBJECTIVES) == {"hinge", "least_squares"}


def test_feature_matching_trains_only_the_fake_side():
    real = [torch.zeros(2, 3, 4, requires_grad=True), torch.ones(2, 5, 1, requires_grad=True)]
    fake = [torch.ones(2, 3, 4, requires_grad=True), torch.ones(2, 5, 1, requires_grad=True)]
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(0.5)  # mean of 1.0 and 0.0
    loss.backward()
    assert all(r.grad is None for r in real) and fake[0].grad is not None


def test_waveform_discriminator_shapes():
    d = WaveformDiscriminator(channels=2, width=4, layers=3, stride=4)
    logits, feats = d(torch.randn(3, 2, 1024))
    assert len(logits) == 1 and logits[0].shape == (3, 1, 16)
    assert [f.shape[1] for f in feats] == [4, 8, 16, 32]
    assert all(f.shape[0] == 3 for f in feats)


def test_discriminator_list_and_split_halves():
    ds = DiscriminatorList([WaveformDiscriminator(width=2, layers=1),
                            WaveformDiscriminator(width=2, layers=2)])
    audio = torch.randn(4, 1, 256)  # 2 real + 2 fake
    assert len(ds(audio)) == 2 and len(ds(audio, index=1)) == 1
    real_l, fake_l, real_f, fake_f = split_halves(ds(audio))
    assert len(real_l) == 2 and len(real_f) == len(fake_f) == 2 + 3
    assert real_l[0].shape[0] == fake_l[0].shape[0] == 2
    with pytest.raises(ValueError):
        DiscriminatorList([])


def test_registrations():
    registry = get_registry()
    assert {"core.adversarial", "core.frozen_encoder", "core.diffusion"} <= set(
        registry.names("task"))
    assert isinstance(registry.build("discriminator", "core.waveform", {"width": 4},
                                     context={"channels": 2}), WaveformDiscriminator)
    from audio_core.diffusion.samplers import EulerSampler

    assert isinstance(registry.build("sampler", "core.euler", {}), EulerSampler)


def _gan_cfg(**params):
    return load_config({"model": {"encoder": CODEC, "decoder": CODEC,
                                  "losses": [{"name": "core.l1"}],
                                  "discriminators": [{"name": "core.waveform"}] * 3},
                        "task": {"name": "core.adversarial", "params": params},
                        "run": {"seed": 5}})


def _gan(**params):
    return AdversarialCodecTask(cfg=_gan_cfg(), registry=get_registry(), **params)


@pytest.mark.parametrize(("params", "path"), [
    ({"loss": "wasserstein"}, "task.params.loss"),
    ({"d_update_every": 0}, "task.params.d_update_every"),
    ({"warmup_steps": -1}, "task.params.warmup_steps"),
])
def test_gan_params_are_checked(params, path):
    with pytest.raises(ConfigError) as info:
        _gan(**params)
    assert path in str(info.value)


def test_gan_schedule_depends_only_on_the_step():
    task = _gan(warmup_steps=3, d_update_every=2, random_discriminator=True, d_lr=1e-5)
    assert [task.adversarial_active(s) for s in range(5)] == [False] * 3 + [True] * 2
    assert [task.discriminator_active(s) for s in range(7)] == [
        False, False, False, False, True, False, True]
    picks = [task.discriminator_index(s) for s in range(30)]
    assert picks == [_gan(random_discriminator=True).discriminator_index(s) for s in range(30)]
    assert set(picks) == {0, 1, 2}
    assert _gan().discriminator_index(4) is None
    assert task.optimizer_config("discriminator").lr == 1e-5
    assert task.optimizer_config("generator").lr == task.cfg.train.optimizer.lr
    modules = task.build_modules()
    assert set(modules) == {"generator", "discriminator"} and len(modules["discriminator"]) == 3


def test_frozen_encoder_model_is_seeded_and_holds_the_encoder_outside_its_state():
    cfg = load_config({"model": {"encoder": CODEC, "decoder": CODEC,
                                 "losses": [{"name": "core.l1"}]},
                       "task": {"name": "core.frozen_encoder"}})
    torch.manual_seed(1)
    state = torch.get_rng_state()
    build_seeded(0, lambda: torch.nn.Linear(3, 3))
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    a = build_model(cfg)
    torch.manual_seed(2)
    b = build_model(cfg)
    assert isinstance(a, FrozenEncoderAutoencoder)
    assert all(torch.equal(x, y) for x, y in zip(a.encoder.state_dict().values(),
                                                  b.encoder.state_dict().values(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a.decoder.state_dict().values(),
                                                      b.decoder.state_dict().values(),
                                                      strict=True))
    a.train()
    assert not a.encoder.training and not any(p.requires_grad for p in a.encoder.parameters())
    assert not any(p is q for p in a.parameters() for q in a.encoder.parameters())
    assert not any(k.startswith("encoder") for k in a.state_dict())
    out = a(torch.randn(2, 1, 30))
    assert out.reconstruction.shape == (2, 1, 30)
    assert a.reconstruct(torch.randn(2, 1, 30)).shape == (2, 1, 30)


def test_losses_that_want_the_model_output_get_it_and_others_do_not():
    """The loss contract: ``loss(estimate, reference, mask)``; a loss declaring
    ``wants_output = True`` also receives the model's output record by keyword, e.g. to read
    ``output.intermediates`` that components exposed (AudioAutoencoder.forward)."""
    from audio_core.components.conv import ConvDecoder, ConvEncoder
    from audio_core.contracts.components import Loss
    from audio_core.models import LossOutput
    from audio_core.models.autoencoder import AudioAutoencoder
    from audio_core.tasks.base import reconstruction_objective

    class Plain(torch.nn.Module, Loss):
        name = "plain"

        def forward(self, estimate, reference, mask):
            return LossOutput((estimate - reference).abs().mean())

    class Curious(torch.nn.Module, Loss):
        wants_output = True
        name = "curious"

        def forward(self, estimate, reference, mask, *, output):
            return LossOutput(output.intermediates["encoder.energy"])

    class Exposing(ConvEncoder):
        def forward(self, waveform):
            latent = super().forward(waveform)
            self._energy = latent.pow(2).mean()
            return latent

        def intermediates(self):
            return {"energy": self._energy}

    torch.manual_seed(0)
    params = {"dim": 4, "width": 2, "ratios": [2, 2]}
    model = AudioAutoencoder(Exposing(**params), ConvDecoder(**params), sample_rate=8000)
    x = torch.randn(2, 1, 64)
    out = model(x)
    assert set(out.intermediates) == {"encoder.energy"}
    total, logs = reconstruction_objective([(Plain(), 1.0), (Curious(), 2.0)], out, x, None)
    energy = out.intermediates["encoder.energy"]
    assert logs["loss/curious"] == energy.detach()
    torch.testing.assert_close(total, logs["loss/plain"] + 2 * energy)
