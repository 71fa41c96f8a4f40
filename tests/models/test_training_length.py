"""Generating past the training crops: ``LatentDiffusion`` warns when its denoiser says it
does not carry past its training length (``extrapolates_length = False``), and only then."""

from __future__ import annotations

import logging

import pytest
import torch

from audio_core.components.denoisers import ConvDenoiser
from audio_core.diffusion import EulerSampler, RectifiedFlowObjective
from audio_core.models.latent_diffusion import LatentDiffusion


def model(extrapolates: bool | None, trained_seconds: float | None = 0.01) -> LatentDiffusion:
    torch.manual_seed(0)
    denoiser = ConvDenoiser(dim=2, hidden=8, blocks=1)
    if extrapolates is not None:
        denoiser.extrapolates_length = extrapolates
    return LatentDiffusion(denoiser, RectifiedFlowObjective(), EulerSampler(),
                           sample_rate=800, channels=2, latent_dim=2, steps=2, seconds=0.01,
                           trained_seconds=trained_seconds).eval()


@pytest.mark.parametrize(("extrapolates", "trained", "seconds", "warned"), [
    (False, 0.01, 0.02, True),     # absolute positions, twice the training length
    (False, 0.01, 0.01, False),    # the training length itself
    (False, 0.01, 0.005, False),   # shorter
    (True, 0.01, 0.02, False),     # relative positions carry past it
    (None, 0.01, 0.02, False),     # denoisers that say nothing (convolutions) are trusted
    (False, None, 0.02, False),    # no training length known (built by hand)
])
def test_the_warning_names_both_lengths_only_where_the_audio_would_fade(
        caplog, extrapolates, trained, seconds, warned):
    generator = model(extrapolates, trained)
    with caplog.at_level(logging.WARNING, logger="audio_core.models.latent_diffusion"):
        audio = generator.generate(seconds=seconds)
    assert audio.shape == (1, 2, round(seconds * 800))
    messages = [r.getMessage() for r in caplog.records]
    assert bool(messages) == warned
    if warned:
        assert "generating 0.02 s with a model trained on 0.01 s crops" in messages[0]
        assert "ConvDenoiser" in messages[0] and "rae.dit positions: rope" in messages[0]
