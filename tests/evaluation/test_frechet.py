"""Fréchet distance against a float64 numpy/scipy computation, incl. near-singular
covariances; FAD-inf extrapolation; the embedding components."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_core.metrics.frechet import GaussianStats, fad, fad_inf, frechet_distance


def reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's general matrix square root, float64."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b)
                 - 2 * np.trace(covmean))


def test_matches_float64_reference_on_well_conditioned_data():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((400, 8)) @ rng.standard_normal((8, 8))
    b = rng.standard_normal((300, 8)) @ rng.standard_normal((8, 8)) + 0.5
    assert fad(a, b) == pytest.approx(reference_fd(a, b), rel=1e-9)
    assert fad(a, a) == pytest.approx(0.0, abs=1e-9)


def test_gaussians_in_closed_form():
    # two diagonal Gaussians: FD = |mu|^2 + sum (sqrt(s_a) - sqrt(s_b))^2
    a = GaussianStats(np.zeros(3), np.diag([1.0, 4.0, 9.0]), 10)
    b = GaussianStats(np.array([1.0, 0.0, 2.0]), np.diag([4.0, 4.0, 1.0]), 10)
    assert frechet_distance(a, b) == pytest.approx(5.0 + 1.0 + 0.0 + 4.0, abs=1e-12)


def test_near_singular_covariances_stay_finite_and_accurate():
    rng = np.random.default_rng(1)
    basis = rng.standard_normal((3, 16))  # rank-3 data in 16 dimensions
    a = rng.standard_normal((50, 3)) @ basis + 1e-9 * rng.standard_normal((50, 16))
    b = rng.standard_normal((60, 3)) @ basis + 0.1 + 1e-9 * rng.standard_normal((60, 16))
    ours = fad(a, b)
    # float64 reference: the same quantity from the PSD square root via eigh of S_a
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    trace = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s_b @ root), 0, None)).sum()
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace
    assert np.isfinite(ours) and ours >= 0
    assert ours == pytest.approx(expected, rel=1e-6)
    # fewer samples than dimensions: covariances are exactly singular
    assert np.isfinite(fad(a[:5], b[:7]))


def test_fad_inf_extrapolates_the_1_over_n_bias():
    rng = np.random.default_rng(2)
    reference = rng.standard_normal((4000, 4))
    generated = rng.standard_normal((800, 4))  # the same distribution: true FAD is 0
    result = fad_inf(reference, generated, seed=0)
    assert result.sizes[-1] == 800 and len(result.sizes) == 5
    assert result.slope > 0  # FAD shrinks with more samples
    assert abs(result.value) < fad(reference, generated)
    with pytest.raises(ValueError, match="two subset sizes"):
        fad_inf(reference, generated, sizes=[800])


def test_bad_embeddings_are_rejected():
    with pytest.raises(ValueError, match="n >= 2"):
        GaussianStats.of(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        GaussianStats.of(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="sizes differ"):
        fad(np.zeros((3, 2)) + np.arange(3)[:, None], np.ones((3, 4)) * np.arange(3)[:, None])


def test_logmel_embedding_is_registered_and_records_its_name(speech_clip):
    from audio_core.metrics.embeddings import build_embedding

    audio, rate = speech_clip
    embedding = build_embedding("core.logmel")
    frames = embedding.embed(audio[None], rate)
    assert frames.dtype == torch.float64 and frames.shape[1] == 128
    assert frames.shape[0] == (audio.shape[-1] // 256 + 1) // 16
    assert embedding.describe() == {"name": "core.logmel", "layer": "mean_std",
                                    "sample_rate": 16000}
    # resampled input gives nearly the same embedding
    from audio_core.audio.resample import resample

    again = embedding.embed(resample(audio, rate, 22050)[None], 22050)
    assert again.shape == frames.shape


def test_logmel_embedding_floors_empty_bands_top_db_below_the_peak(speech_clip):
    """A codec that leaves bands empty (a low-pass) is far from the original but by a
    bounded amount: empty bins sit top_db below the clip's peak, not at the -100 dB clamp."""
    from audio_core.audio.dsp import MelSpectrogram
    from audio_core.metrics.embeddings import build_embedding

    audio, rate = speech_clip
    spectrum = torch.fft.rfft(audio)
    spectrum[int(4000 / rate * audio.shape[-1]):] = 0  # nothing above 4 kHz
    lowpassed = torch.fft.irfft(spectrum, n=audio.shape[-1])
    embedding = build_embedding("core.logmel")
    frames = embedding.embed(lowpassed[None], rate)
    mel = MelSpectrogram(16000, n_fft=1024, hop_length=256, n_mels=64, log="db",
                         top_db=None)(lowpassed)
    floor = mel.max() - 80
    assert mel.min() < floor - 20  # the raw empty bands are far below the floor
    means = frames[:, :64]
    assert means.min() >= floor - 1e-4 and torch.isclose(means.min(), floor.double(),
                                                          atol=1e-3)
    narrow = build_embedding("core.logmel", {"top_db": 40}).embed(lowpassed[None], rate)
    assert narrow[:, :64].min() >= mel.max() - 40 - 1e-4


def test_torchscript_embedding_loads_from_a_local_path(tmp_path):
    from audio_core.metrics.embeddings import EmbeddingError, build_embedding

    class Frames(torch.nn.Module):
        def forward(self, x: torch.Tensor):
            frames = x[:, : x.shape[-1] // 100 * 100].reshape(1, -1, 100)
            return frames.mean(-1, keepdim=True).repeat(1, 1, 4), frames.std(-1)

    path = tmp_path / "toy.pt"
    torch.jit.save(torch.jit.script(Frames()), str(path))
    embedding = build_embedding("core.torchscript", {"path": str(path), "sample_rate": 8000,
                                                     "layer": 1})
    audio = torch.randn(1, 16000)  # resampled to 8 kHz: 80 frames of 100 samples
    assert embedding.embed(audio, 16000).shape == (1, 80)  # a (1, dim) clip embedding
    assert embedding.describe()["layer"] == "1"
    first = build_embedding("core.torchscript", {"path": str(path), "sample_rate": 8000})
    assert first.embed(audio, 16000).shape == (80, 4)  # (1, frames, dim), first output
    assert embedding.describe()["name"] == "torchscript:toy.pt"
    with pytest.raises(EmbeddingError, match=r"does not exist.*no downloads"):
        build_embedding("core.torchscript", {"path": str(tmp_path / "missing.pt")})


def test_embedding_kind_is_listed():
    from audio_core.plugins import get_registry

    names = set(get_registry().names("embedding"))
    assert {"core.logmel", "core.torchscript", "core.codec_latent"} <= names
