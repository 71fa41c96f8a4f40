"""Diffusion and flow building blocks: objectives (noising path, target, time grid),
samplers (ODE/SDE integrators over any objective) and classifier-free guidance.

Networks live elsewhere: denoisers in :mod:`audio_core.components.denoisers`, conditioners
in :mod:`audio_core.components.conditioners`.
"""

from audio_core.diffusion.guidance import drop_conditioning, guided_denoiser
from audio_core.diffusion.objectives import (
    EDMObjective,
    Objective,
    RectifiedFlowObjective,
    VDiffusionObjective,
)
from audio_core.diffusion.samplers import (
    DDIMSampler,
    DPMSolverPP2MSampler,
    EulerSampler,
    HeunSampler,
    Sampler,
)

__all__ = ["DDIMSampler", "DPMSolverPP2MSampler", "EDMObjective", "EulerSampler",
           "HeunSampler", "Objective", "RectifiedFlowObjective", "Sampler",
           "VDiffusionObjective", "drop_conditioning", "guided_denoiser"]
