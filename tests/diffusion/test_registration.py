"""The diffusion components are registered as ``core.*`` and build from params."""

from __future__ import annotations

import pytest

from audio_core.components.conditioners import ByteTextEncoder, ClassEmbedding, Unconditional
from audio_core.components.denoisers import ConvDenoiser, FrameDenoiser
from audio_core.diffusion.objectives import (
    EDMObjective,
    RectifiedFlowObjective,
    VDiffusionObjective,
)
from audio_core.diffusion.samplers import (
    DDIMSampler,
    DPMSolverPP2MSampler,
    EulerSampler,
    HeunSampler,
)
from audio_core.plugins import get_registry


@pytest.mark.parametrize(("kind", "name", "params", "cls"), [
    ("objective", "core.edm", {"sigma_max": 40.0}, EDMObjective),
    ("objective", "core.v_diffusion", {}, VDiffusionObjective),
    ("objective", "core.rectified_flow", {"shift": "auto"}, RectifiedFlowObjective),
    ("sampler", "core.ddim", {"eta": 0.5}, DDIMSampler),
    ("sampler", "core.euler", {}, EulerSampler),
    ("sampler", "core.heun", {}, HeunSampler),
    ("sampler", "core.dpmpp_2m", {}, DPMSolverPP2MSampler),
    ("conditioner", "core.class_embedding", {"classes": ["a", "b"], "dim": 8}, ClassEmbedding),
    ("conditioner", "core.byte_text", {"dim": 8, "heads": 2}, ByteTextEncoder),
    ("conditioner", "core.unconditional", {}, Unconditional),
    ("denoiser", "core.conv_denoiser", {"hidden": 16, "cond_dim": 8}, ConvDenoiser),
    ("denoiser", "core.frame_denoiser", {"hidden": 8}, FrameDenoiser),
])
def test_components_build_from_the_registry(kind, name, params, cls):
    built = get_registry().build(kind, name, params, context={"dim": 5})
    assert type(built) is cls
    if kind == "denoiser":
        assert built.dim == 5  # the latent width comes from the framework's context


def test_descriptions_are_listed():
    registry = get_registry()
    for kind in ("objective", "sampler", "conditioner", "denoiser"):
        specs = [s for s in registry.specs(kind) if s.plugin == "core"]
        assert specs and all(s.description for s in specs), kind
