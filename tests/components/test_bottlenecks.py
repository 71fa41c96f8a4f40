"""Continuous bottlenecks core.identity and core.vae: the Quantizer contract and values."""

from __future__ import annotations

import pytest
import torch

from audio_core.components.bottlenecks import IdentityBottleneck, VAEBottleneck
from audio_core.contracts.models import DiscreteQuantizer, Quantizer
from audio_core.plugins import get_registry


@pytest.mark.parametrize("name", ["core.identity", "core.vae"])
def test_registered_bottlenecks_are_continuous_quantizers(name):
    q = get_registry().build("quantizer", name, {}, path="model.quantizer")
    assert isinstance(q, Quantizer) and not isinstance(q, DiscreteQuantizer)


def test_identity_passes_the_latent_through():
    latent = torch.randn(2, 3, 5, requires_grad=True)
    out = IdentityBottleneck()(latent)
    assert out.latent is latent and out.codes is None and out.loss.item() == 0.0


def test_vae_splits_mean_and_scale_and_weights_the_kl():
    mean, raw = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    vae = VAEBottleneck(kl_weight=0.5)
    out = vae.eval()(torch.cat([mean, raw], dim=1))
    std = torch.nn.functional.softplus(raw) + 1e-4
    kl = 0.5 * (mean.pow(2) + std.pow(2) - 1 - 2 * std.log()).mean()
    assert torch.equal(out.latent, mean) and out.codes is None
    torch.testing.assert_close(out.metrics["kl"], kl)
    torch.testing.assert_close(out.loss, 0.5 * kl)
    torch.manual_seed(0)
    sampled = vae.train()(torch.cat([mean, raw], dim=1)).latent
    assert sampled.shape == mean.shape and not torch.equal(sampled, mean)
    with pytest.raises(ValueError, match=r"needs \(batch, 2 \* dim, frames\).*\(1, 3, 4\)"):
        vae(torch.randn(1, 3, 4))


def test_bottleneck_weights_may_be_schedules():
    from audio_core.components.rvq import ResidualVQ

    vae = VAEBottleneck(kl_weight={"start": 0.0, "end": 1.0, "warmup_steps": 4})
    rvq = ResidualVQ(dim=4, num_codebooks=2, codebook_size=4, kmeans_init=False,
                     commitment_weight={"start": 1.0, "end": 0.0, "warmup_steps": 2,
                                        "shape": "step"})
    latent = torch.randn(2, 8, 5)
    for step, kl_w, c_w in ((0, 0.0, 1.0), (2, 0.5, 0.0), (9, 1.0, 0.0)):
        vae.set_step(step)
        rvq.set_step(step)
        out = vae(latent)
        assert out.metrics["kl_weight"].item() == kl_w
        torch.testing.assert_close(out.loss, kl_w * out.metrics["kl"])
        q = rvq(latent[:, :4])
        torch.testing.assert_close(q.loss, c_w * q.metrics["commitment"])
