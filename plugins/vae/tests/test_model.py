"""vae.vae: running latent statistics, normalised latents, interpolation, part checks."""

from __future__ import annotations

import pytest
import torch
from audio_plugin_vae.bottleneck import GaussianBottleneck
from audio_plugin_vae.model import VariationalAutoencoder, slerp
from audio_plugin_vae.seanet import VAEDecoder, VAEEncoder

from audio_core.config import load_config
from audio_core.errors import ConfigError
from audio_core.models.build import build_model
from audio_core.models.latent_stats import load_stats, save_stats

GEOMETRY = {"width": 4, "strides": [2, 4], "residual_blocks": 1, "latent_dim": 3}


def make(**kwargs) -> VariationalAutoencoder:
    torch.manual_seed(0)
    return VariationalAutoencoder(VAEEncoder(**GEOMETRY), VAEDecoder(**GEOMETRY),
                                  GaussianBottleneck(), sample_rate=8000, channels=1, **kwargs)


def test_training_forwards_track_the_posterior_mean_statistics():
    model = make(stats_momentum=0.5).train()
    batches = [torch.randn(2, 1, 80) for _ in range(3)]
    means = []
    for x in batches:
        model(x)
        with torch.no_grad():
            means.append(model.features(x))
    # first batch: exact; then exponential averages of the mean and the mean square
    first = means[0]
    m1, s1 = first.mean(dim=(0, 2)), first.pow(2).mean(dim=(0, 2))
    m, s = m1, s1
    for later in means[1:]:
        m = 0.5 * m + 0.5 * later.mean(dim=(0, 2))
        s = 0.5 * s + 0.5 * later.pow(2).mean(dim=(0, 2))
    stats = model.latent_statistics()
    torch.testing.assert_close(stats["mean"], m, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(stats["std"], (s - m.pow(2)).sqrt(), atol=1e-5, rtol=1e-4)
    assert int(model.stats_updates) == 3


def test_eval_forwards_leave_the_statistics_alone():
    model = make().eval()
    model(torch.randn(1, 1, 64))
    model.reconstruct(torch.randn(1, 1, 64))
    assert int(model.stats_updates) == 0
    torch.testing.assert_close(model.normalizer.std, torch.ones(3))


def test_encode_normalises_and_decode_undoes_it():
    model = make().train()
    for _ in range(4):
        model(0.3 * torch.randn(4, 1, 400) + 0.1)
    model.eval()
    x = torch.randn(1, 1, 77)
    with torch.no_grad():
        raw, latent = model.features(x), model.encode(x)
        stats = model.latent_statistics()
        torch.testing.assert_close(latent, (raw - stats["mean"][:, None]) / stats["std"][:, None])
        torch.testing.assert_close(model.decode(latent, 77), model.reconstruct(x))
    assert latent.shape == (1, 3, 10)


def test_normalised_latents_of_the_training_data_are_standard():
    model = make(stats_momentum=1e-3).train()
    data = [0.5 * torch.randn(8, 1, 800) for _ in range(6)]
    for x in data:
        model(x)  # momentum 1e-3 < 1 / 6: a cumulative average of the six batches
    model.eval()
    with torch.no_grad():
        z = torch.cat([model.encode(x) for x in data], dim=-1)
    flat = z.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(flat.mean(dim=1), torch.zeros(3), atol=0.02, rtol=0)
    torch.testing.assert_close(flat.std(dim=1), torch.ones(3), atol=0.02, rtol=0)


def test_raw_latents_without_normalisation():
    model = make(normalize_latents=False).train()
    model(torch.randn(2, 1, 80))
    model.eval()
    x = torch.randn(1, 1, 80)
    torch.testing.assert_close(model.encode(x), model.features(x))


def test_statistics_files_in_and_out(tmp_path):
    model = make().train()
    model(torch.randn(2, 1, 80))
    path = model.save_latent_stats(tmp_path / "stats.safetensors")
    stats, meta = load_stats(path, 3)
    torch.testing.assert_close(stats["mean"], model.latent_statistics()["mean"])
    assert meta["updates"] == 1
    mean, std = torch.linspace(-1, 1, 16), torch.linspace(0.5, 2, 16)
    save_stats(tmp_path / "fixed.safetensors", {"mean": mean, "std": std,
                                                "count": torch.ones(16)})
    cfg = load_config("vae.tiny", [f"model.params.latent_stats={tmp_path / 'fixed.safetensors'}"])
    fixed = build_model(cfg).train()
    fixed(torch.randn(1, 1, 640))  # no running update with a statistics file
    torch.testing.assert_close(fixed.normalizer.mean, mean)
    torch.testing.assert_close(fixed.normalizer.std, std)
    assert int(fixed.stats_updates) == 0 and not fixed.track_stats


def test_interpolation_endpoints_are_the_reconstructions():
    model = make().train()
    model(torch.randn(2, 1, 160))
    model.eval()
    a, b = torch.randn(1, 1, 100), torch.randn(1, 1, 130)
    padded_a = torch.nn.functional.pad(a, (0, 30))
    with torch.no_grad():
        torch.testing.assert_close(model.interpolate(a, b, 0.0), model.reconstruct(padded_a))
        torch.testing.assert_close(model.interpolate(a, b, 1.0), model.reconstruct(b))
        mid = model.interpolate(a, b, 0.5)
        expected = model.decode((model.encode(padded_a) + model.encode(b)) / 2, 130)
        torch.testing.assert_close(mid, expected)
        several = model.interpolate(a[0], b[0], [0.0, 0.5, 1.0], spherical=True)
    assert mid.shape == (1, 1, 130) and several.shape == (3, 1, 130)


def test_slerp_keeps_norms_and_hits_the_endpoints():
    za, zb = torch.randn(2, 8, 5), torch.randn(2, 8, 5)
    torch.testing.assert_close(slerp(za, zb, 0.0), za, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(slerp(za, zb, 1.0), zb, atol=1e-5, rtol=1e-5)
    mid = slerp(za, zb, 0.5)
    torch.testing.assert_close(mid.norm(dim=1), (za.norm(dim=1) + zb.norm(dim=1)) / 2)


@pytest.mark.parametrize("override, match", [
    ("model.params.hop_length=128", "hop_length is 128 but the encoder's strides"),
    ("model.decoder.params.strides=[2,4,4]", "differs from decoder hop_length"),
    ("model.decoder.params.latent_dim=8", "2 x the decoder's latent_dim 8"),
])
def test_parts_that_do_not_fit_are_config_errors(override, match):
    cfg = load_config("vae.tiny", [override])
    with pytest.raises(ConfigError, match=match):
        build_model(cfg)


def test_a_bottleneck_without_a_posterior_is_a_config_error():
    from audio_core.components.bottlenecks import IdentityBottleneck

    with pytest.raises(ConfigError, match="Gaussian bottleneck"):
        VariationalAutoencoder(VAEEncoder(**GEOMETRY), VAEDecoder(**GEOMETRY),
                               IdentityBottleneck(), sample_rate=8000, channels=1)


def test_core_latent_tools_store_the_normalised_latents(tmp_path):
    """``audio-core latents`` (pre_encode) and ``encode --latent`` store what ``encode``
    gives: a stage-2 model trains on the normalised latents."""
    from audio_core.latents.encode import encode_latents, pre_encode
    from audio_core.latents.store import iter_latents

    model = make().train()
    model(0.3 * torch.randn(4, 1, 800) + 0.2)
    model.eval()
    clips = [{"audio": 0.3 * torch.randn(1, 500 + 37 * i), "path": f"clip{i}.wav"}
             for i in range(3)]
    pre_encode(model, clips, tmp_path / "latents", show_progress=False)
    stored = {record["path"]: latent for record, latent in iter_latents(tmp_path / "latents")}
    assert len(stored) == 3
    for clip in clips:
        with torch.no_grad():
            frames = -(-clip["audio"].shape[-1] // 8)
            padded = torch.nn.functional.pad(clip["audio"],
                                             (0, frames * 8 - clip["audio"].shape[-1]))
            expected = model.encode(padded[None])[0]
        torch.testing.assert_close(stored[clip["path"]], expected, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(encode_latents(model, clip["audio"]), expected, atol=1e-5,
                                   rtol=1e-4)
