"""The stereo preset's training parts fit together: VAE, dual-channel loss, KL and both
discriminators give finite losses and gradients in one generator and one discriminator
pass (no engines: the 2-rank test covers the trainer)."""

from __future__ import annotations

import torch

from audio_core.components.adversarial import feature_matching_loss, get_objective
from audio_core.config import load_config
from audio_core.engine.trainer import build_task
from audio_core.tasks.adversarial import split_halves
from audio_core.tasks.base import reconstruction_objective

SHRINK = ["model.encoder.params.width=4", "model.decoder.params.width=4",
          "model.encoder.params.residual_blocks=1", "model.decoder.params.residual_blocks=1"]


def test_stereo_preset_generator_and_discriminator_steps(registry):
    cfg = load_config("vae.44khz_stereo", SHRINK, registry=registry)
    for ref in cfg.model.discriminators:  # narrow discriminators, same resolutions and bands
        ref.params = {**ref.params, "width": 4}
    task = build_task(cfg, registry)
    modules = task.build_modules()
    model, discriminators = modules["generator"], modules["discriminator"]
    assert [type(loss).__name__ for loss, _ in task.losses] == ["DualChannelLoss",
                                                                 "WaveformL1"]
    torch.manual_seed(0)
    audio = 0.1 * torch.randn(2, 2, 4096)
    audio[:, 1] *= 0.5  # a stereo image: the side signal is not silent
    model.quantizer.set_step(20000)  # past the KL warm-up (the trainer does this per step)
    model.train()
    out = model(audio)
    loss, logs = reconstruction_objective(task.losses, out, audio, None, step=20000)
    assert {"loss/dual_channel_mid", "loss/dual_channel_side", "quantizer/kl"} <= set(logs)
    assert float(logs["quantizer/kl_weight"]) == 1e-4
    real_l, fake_l, real_f, fake_f = split_halves(
        discriminators(torch.cat([audio, out.reconstruction])))
    objective = get_objective("hinge")
    g_loss = loss + 0.1 * objective.generator(fake_l) + 5.0 * feature_matching_loss(
        real_f, fake_f)
    g_loss.backward()
    assert torch.isfinite(g_loss)
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    discriminators.zero_grad()
    real_l, fake_l, _, _ = split_halves(
        discriminators(torch.cat([audio, out.reconstruction.detach()])))
    objective.discriminator(real_l, fake_l).backward()
    assert all(p.grad is not None for p in discriminators.parameters())
