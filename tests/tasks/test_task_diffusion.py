"""The latent diffusion task (`core.diffusion`) over `core.latent_diffusion`: parameters,
the model it builds, guidance and determinism, and 2-rank training (tests/tasks/conftest).
The objectives, samplers and guidance themselves are tested in tests/diffusion."""

from __future__ import annotations

import pytest
import torch

from audio_core.audio.masks import frame_mask
from audio_core.config import load_config
from audio_core.errors import ConfigError
from audio_core.models.build import build_model
from audio_core.models.latent_diffusion import GenerationError, LatentDiffusion
from audio_core.plugins import get_registry
from audio_core.tasks.diffusion import DiffusionTask

CLASSES = ["a", "b", "c"]


def _cfg(**model):
    return load_config({
        "data": {"sample_rate": 8000, "channels": 2, "segment_seconds": 0.01},
        "model": {"denoiser": {"name": "core.conv_denoiser", "params": {"hidden": 8,
                                                                         "blocks": 1}},
                  "conditioner": {"name": "core.class_embedding",
                                  "params": {"classes": CLASSES, "dim": 4}},
                  "objective": {"name": "core.rectified_flow"},
                  "sampler": {"name": "core.euler"}, **model},
        "task": {"name": "core.diffusion"}}, check_params=True)


def test_task_params_are_checked():
    with pytest.raises(ConfigError, match=r"task\.params\.cond_dropout"):
        DiffusionTask(cfg=_cfg(), registry=get_registry(), cond_dropout=1.5)


def test_without_a_stage1_model_the_audio_is_the_latent():
    model = build_model(_cfg())
    assert isinstance(model, LatentDiffusion) and model.latent_dim == 2
    assert model.hop_length == 1 and model.condition_keys == ("label",)
    audio = torch.randn(3, 2, 80)
    torch.testing.assert_close(model.to_audio(model.to_latent(audio), 80), audio)


def test_generation_is_seeded_and_guidance_one_is_the_conditional_model():
    torch.manual_seed(0)
    model = build_model(_cfg()).eval()
    torch.nn.init.normal_(model.denoiser.out.weight)  # a zero-initialised output says nothing
    one = model.generate("b", num_samples=2, steps=3, guidance=1.0, seed=5, seconds=0.01)
    assert one.shape == (2, 2, 80)
    assert torch.equal(one, model.generate("b", num_samples=2, steps=3, guidance=1.0, seed=5,
                                           seconds=0.01))
    assert not torch.equal(one, model.generate("b", num_samples=2, steps=3, guidance=1.0,
                                               seed=6, seconds=0.01))
    # guidance 1 equals sampling the conditional model with no guidance machinery at all
    objective, sampler = model.objective, model.sampler
    cond = model.conditioner(torch.tensor([1, 1]))
    generator = torch.Generator().manual_seed(5)
    grid = objective.timesteps(3, size=2 * 80)
    x = objective.prior((2, 2, 80), generator=generator, size=2 * 80)

    def conditional(x_t, t):
        net_in, net_t = objective.net_inputs(x_t, t)
        return objective.denoised(model.denoiser(net_in, net_t, cond).float(), x_t, t)

    manual = sampler(conditional, x, grid, objective, generator=generator)
    torch.testing.assert_close(one, manual, rtol=0, atol=0)
    assert not torch.equal(one, model.generate("b", num_samples=2, steps=3, guidance=3.0,
                                               seed=5, seconds=0.01))
    with pytest.raises(GenerationError, match="'z'"):
        model.generate("z", steps=2, seconds=0.01)


def test_frame_mask_marks_frames_with_any_real_sample():
    mask = torch.tensor([[True] * 5 + [False] * 4, [True] * 9])
    assert frame_mask(mask, 3, 4).tolist() == [[True, True, False], [True, True, True]]


@pytest.mark.integration
def test_latent_diffusion_trains_on_two_ranks(task_results):
    """60 ZeRO-2 steps (EDM) on a stage-1 model's latents encoded on the fly: the
    fixed-noise evaluation loss falls, the stage-1 model is untouched and outside the
    engine, samples have the latent shape."""
    got = task_results["diffusion"]
    assert got["roles"] == ("denoiser",) and got["global_steps"] == 60
    assert got["after"] < 0.6 * got["before"]
    assert got["stage1_unchanged"] and not got["stage1_in_engine"]
    assert all(k.startswith(("denoiser.", "normalizer.", "stage1_fingerprint"))
               for k in got["initial_keys"])
    assert got["sample_shape"] == (2, got["latent_dim"], 16) and got["sample_finite"]


@pytest.mark.integration
def test_trainer_runs_latent_diffusion_with_ema(task_results):
    got = task_results["trainer"]["diffusion"]
    assert got["steps"] == {"denoiser": 3}
    assert "ema.safetensors" in got["files"] and got["weights"] == "ema"
    assert not any(k.startswith("stage1.") for k in got["export_keys"])
    assert got["loaded"] == "LatentDiffusion"
    assert "diffusion/t" in got["logged"]


def test_a_text_conditioned_model_reads_text_and_refuses_labels():
    torch.manual_seed(0)
    model = build_model(_cfg(conditioner={"name": "core.byte_text",
                                          "params": {"dim": 8, "max_tokens": 16}})).eval()
    torch.nn.init.normal_(model.denoiser.out.weight)
    assert model.condition_keys == ("text",)
    bird = model.generate("a bird chirps", steps=2, guidance=2.0, seed=1, seconds=0.01)
    assert torch.equal(bird, model.generate("a bird chirps", steps=2, guidance=2.0, seed=1,
                                            seconds=0.01))
    assert not torch.equal(bird, model.generate("rain on a roof", steps=2, guidance=2.0,
                                                seed=1, seconds=0.01))
    x, t = torch.randn(2, 2, 80), torch.rand(2)
    texts = ["a bird chirps", "rain on a roof"]
    with torch.no_grad():
        cond = model(x, t, texts)
        dropped = model(x, t, texts, torch.tensor([True, False]))
        null = model(x, t, None)
    torch.testing.assert_close(dropped[0], null[0])  # dropped: the null embedding
    torch.testing.assert_close(dropped[1], cond[1])
    assert not torch.equal(cond[0], null[0])
