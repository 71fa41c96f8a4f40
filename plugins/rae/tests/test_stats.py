"""Latent statistics of a frozen encoder (``audio-core stats --features``) equal numpy's,
are applied by encode/decode, and travel with the weights."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import noise

import audio_core
from audio_core.cli import main
from audio_core.config import load_config
from audio_core.engine.export import save_export
from audio_core.models.build import build_model

PRESET = "rae.wav2vec2_tiny"
SHRINK = ["model.decoder.params.depth=1", "model.decoder.params.width=32"]


def toy_folder(root):
    rng = np.random.default_rng(0)
    root.mkdir()
    for i, seconds in enumerate((0.3, 0.75, 1.4)):  # 1.4 s: two encoder windows
        t = np.arange(int(seconds * 16000)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(root / f"{i}.wav", wave.astype(np.float32), 16000)
    return root


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stats")
    data = toy_folder(folder / "toy")
    out = folder / "features.safetensors"
    assert main(["stats", PRESET, str(data), str(out), "--features"]) == 0
    return data, out


def untrained(registry, *overrides):
    cfg = load_config(PRESET, [*SHRINK, *overrides], registry=registry)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.run.seed)
        model = build_model(cfg, registry)
    model.config = cfg
    return model.eval()


def test_feature_statistics_equal_numpy_over_every_frame(stats, registry):
    from safetensors.torch import load_file

    data, out = stats
    model = untrained(registry)
    frames = []
    for path in sorted(data.glob("*.wav")):
        wave, _ = sf.read(path, dtype="float32")
        frames.append(model.features(torch.from_numpy(wave)[None, None])[0].double().numpy())
    flat = np.concatenate(frames, axis=1)  # (64 channels, 15 + 38 + 70 frames)
    assert flat.shape == (64, 123)
    saved = load_file(str(out))
    np.testing.assert_allclose(saved["mean"].double().numpy(), flat.mean(1), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(saved["std"].double().numpy(), flat.std(1), rtol=1e-4)
    assert int(saved["count"].flatten()[0]) == 123


def test_encode_normalises_with_the_statistics_and_the_decoder_takes_that(stats, registry):
    from safetensors.torch import load_file

    _, out = stats
    saved = load_file(str(out))
    model = untrained(registry, f"model.params.latent_stats={out}")
    wave = noise(2, 1, 6400)
    latent = model.encode(wave)
    expected = (model.features(wave) - saved["mean"][:, None]) / saved["std"][:, None]
    torch.testing.assert_close(latent, expected)
    assert latent.std() > 0.5  # unit-scale latents
    torch.testing.assert_close(model.reconstruct(wave), model.decode(latent, 6400))
    torch.testing.assert_close(model.normalizer.denormalize(latent), model.features(wave))


def test_statistics_are_stored_with_the_weights(stats, registry, tmp_path):
    _, out = stats
    copy = tmp_path / "stats.safetensors"
    copy.write_bytes(out.read_bytes())
    model = untrained(registry, f"model.params.latent_stats={copy}")
    save_export(model, model.config, tmp_path, registry=registry)
    copy.unlink()  # the export does not need the file any more
    loaded = audio_core.load(tmp_path, registry=registry)
    assert torch.equal(loaded.normalizer.mean, model.normalizer.mean)
    assert torch.equal(loaded.normalizer.std, model.normalizer.std)
    assert not torch.equal(loaded.normalizer.std, torch.ones(64))
    wave = noise(1, 1, 4000)
    assert torch.equal(loaded.encode(wave), model.encode(wave))
    assert torch.equal(loaded.reconstruct(wave), model.reconstruct(wave))
