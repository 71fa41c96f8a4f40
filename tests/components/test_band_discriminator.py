"""core.mbd: the multi-band STFT discriminator (band split, per-band weights, shapes)."""

from __future__ import annotations

import itertools

import pytest
import torch

from audio_core.components.band_discriminator import (
    BANDS,
    BandSplitSTFTDiscriminator,
    MultiBandDiscriminator,
    band_bins,
)


def test_default_bands_cover_the_spectrum_without_overlap():
    edges = band_bins(BANDS, 1025)
    assert edges[0][0] == 0 and edges[-1][1] == 1025
    assert all(a[1] == b[0] for a, b in itertools.pairwise(edges))


@pytest.mark.parametrize("bands", [[], [[0.5, 0.2]], [[0.0, 0.6], [0.5, 1.0]],
                                   [[0.0, 1.5]], [[0.0, 0.001], [0.001, 1.0]]])
def test_bad_bands_are_errors(bands):
    with pytest.raises(ValueError, match="bands must be"):
        band_bins(bands, 65)


def test_shapes_per_band_and_joined_logits():
    d = BandSplitSTFTDiscriminator(128, channels=2, bands=[[0.0, 0.25], [0.25, 1.0]],
                                   width=3, layers=2)
    spec = d.spectrogram(torch.randn(1, 2, 1024))
    assert spec.shape == (1, 4, 1024 // 32 + 1, 65)  # real/imag per channel, 65 bins
    logits, features = d(torch.randn(1, 2, 1024))
    # band widths 16 and 49 bins, halved twice (ceil): 4 and 13 -> joined 17
    assert [f.shape[-1] for f in features] == [16, 8, 4, 4, 49, 25, 13, 13]
    assert logits[0].shape == (1, 1, 33, 17)


def test_each_band_only_sees_its_own_frequencies():
    """A signal confined to the low band changes only the low band's features."""
    torch.manual_seed(0)
    d = BandSplitSTFTDiscriminator(256, bands=[[0.0, 0.25], [0.25, 1.0]], width=2, layers=1,
                                   norm="none")
    t = torch.arange(4096) / 16000
    low = torch.sin(2 * torch.pi * 300 * t).view(1, 1, -1)
    _, base = d(torch.zeros(1, 1, 4096))
    _, moved = d(0.5 * low)
    per_band = len(base) // 2
    assert not torch.allclose(base[0], moved[0])
    # the high band's first layer barely reacts (only spectral leakage of the window)
    high = (moved[per_band] - base[per_band]).abs().max()
    assert high < 0.05 * (moved[0] - base[0]).abs().max()


def test_multi_band_runs_every_resolution_and_trains():
    d = MultiBandDiscriminator(n_ffts=(64, 256), width=2, layers=1)
    audio = torch.randn(2, 1, 2048, requires_grad=True)
    logits, features = d(audio)
    assert len(logits) == 2 and len(features) == 2 * len(BANDS) * 3
    torch.stack([x.mean() for x in logits]).sum().backward()
    assert audio.grad is not None and torch.isfinite(audio.grad).all()
    with pytest.raises(ValueError, match="at least one n_fft"):
        MultiBandDiscriminator(n_ffts=())
