"""Stage 2: core.latent_diffusion with the mousai.unet denoiser and a mousai text
conditioner. Seeded generation, classifier-free guidance, the T5 conditioner in a model.

These models are untrained and generate on the waveform itself (``model.params.stage1=null``,
so no stage-1 export is needed); the zero-initialised output layers get random weights so
that the conditioning reaches the output."""

from __future__ import annotations

import pytest
import torch

from audio_core.config import load_config
from audio_core.models.build import build_model

TEXTS = ["a piano playing", "a dog barks"]


def generator(registry, *overrides: str):
    cfg = load_config("mousai.tiny_generator", [
        "model.params.stage1=null", "model.params.steps=4", "model.params.guidance=3.0",
        "data.segment_seconds=0.01", *overrides], registry=registry, check_params=True)
    torch.manual_seed(0)
    model = build_model(cfg, registry).eval()
    with torch.no_grad():
        for p in model.denoiser.parameters():
            if not p.any():  # zero-initialised output projections
                p.normal_(std=0.1)
    return model


@pytest.fixture(scope="module")
def minilm_generator(registry):
    return generator(registry)


def test_the_generator_is_core_latent_diffusion_with_mousai_parts(minilm_generator):
    model = minilm_generator
    assert type(model).__name__ == "LatentDiffusion"
    assert type(model.denoiser).__name__ == "UNet1d" and model.denoiser.cond_dim == 384
    assert type(model.conditioner).__name__ == "MiniLMConditioner"
    assert model.condition_keys == ("text",)
    assert (type(model.objective).__name__, type(model.sampler).__name__) == (
        "VDiffusionObjective", "DDIMSampler")
    # the frozen text model is not part of the weights
    assert not any(k.startswith("conditioner.text_model") for k in model.state_dict())


def test_same_seed_same_audio(minilm_generator):
    model = minilm_generator
    one = model.generate(TEXTS, num_samples=2, seed=3, seconds=0.01)
    assert one.shape == (2, 2, 160) and torch.isfinite(one).all()
    assert torch.equal(one, model.generate(TEXTS, num_samples=2, seed=3, seconds=0.01))
    assert not torch.equal(one, model.generate(TEXTS, num_samples=2, seed=4, seconds=0.01))
    # the text matters
    other = model.generate(TEXTS[::-1], num_samples=2, seed=3, seconds=0.01)
    assert not torch.equal(one[0], other[0])


def test_guidance_one_is_the_conditional_model(minilm_generator):
    """With guidance 1 the null embedding plays no part: changing it changes nothing, while
    at guidance 3 it changes the audio."""
    model = minilm_generator
    null = model.conditioner.null_embedding
    before = {g: model.generate(TEXTS, num_samples=2, guidance=g, seed=1, seconds=0.01)
              for g in (1.0, 3.0)}
    saved = null.detach().clone()
    try:
        with torch.no_grad():
            null.add_(torch.randn_like(null))
        after = {g: model.generate(TEXTS, num_samples=2, guidance=g, seed=1, seconds=0.01)
                 for g in (1.0, 3.0)}
    finally:
        with torch.no_grad():
            null.copy_(saved)
    assert torch.equal(before[1.0], after[1.0])
    assert not torch.equal(before[3.0], after[3.0])
    assert not torch.equal(before[1.0], before[3.0])


def test_guidance_one_matches_sampling_the_conditional_denoiser(minilm_generator):
    """guidance 1 == the sampler run on the conditional prediction alone."""
    model = minilm_generator
    frames = model.num_frames(0.01)
    cond = model.condition(TEXTS, 2)
    objective = model.objective

    def denoise(x_t, t):
        net_input, net_time = objective.net_inputs(x_t, t)
        return objective.denoised(model.denoiser(net_input, net_time, cond).float(), x_t, t)

    padded = -(-frames // model.frame_multiple()) * model.frame_multiple()
    generator = torch.Generator().manual_seed(7)
    size = model.latent_dim * padded
    x_T = objective.prior((2, model.latent_dim, padded), generator=generator, size=size)
    with torch.no_grad():
        expected = model.sampler(denoise, x_T.float(), objective.timesteps(4, size=size),
                                 objective, generator=generator)[..., :frames]
    got = model.sample_latents(TEXTS, 2, steps=4, guidance=1.0, seed=7, frames=frames)
    torch.testing.assert_close(got, expected)


def test_the_t5_conditioner_drives_the_generator(registry, tiny_t5):
    model = generator(registry, "model.conditioner.name=mousai.t5",
                      f"model.conditioner.params={{path: {tiny_t5}, max_tokens: 8}}")
    assert type(model.conditioner).__name__ == "T5Conditioner"
    assert model.denoiser.cond_dim == 32
    audio = model.generate(["a bird chirps", "a dog barks"], num_samples=2, seed=0,
                           seconds=0.01)
    assert audio.shape == (2, 2, 160)
    assert torch.equal(audio, model.generate(["a bird chirps", "a dog barks"], num_samples=2,
                                             seed=0, seconds=0.01))


def test_the_full_generator_preset_builds_at_a_tiny_width(registry, tiny_t5):
    """The original stage-2 wiring (6 levels, self- and cross-attention at the four deeper
    ones, 12 heads x 64, T5 tokens) with every width shrunk to 8, on the waveform."""
    cfg = load_config("mousai.generator", [
        "model.params.stage1=null", "model.denoiser.params.channels=[8,8,8,8,8,8]",
        "model.denoiser.params.emb_dim=16", f"model.conditioner.params.path={tiny_t5}",
        "data.segment_seconds=0.01"], registry=registry, check_params=True)
    model = build_model(cfg, registry).eval()
    unet = model.denoiser
    attention = [item.transformer is not None and item.transformer.attend is not None
                 for level in unet.levels for item in level.down_items[:1]]
    cross = [item.transformer is not None and item.transformer.cross is not None
             for level in unet.levels for item in level.down_items[:1]]
    assert attention == cross == [False, False, True, True, True, True]
    heads = unet.levels[2].down_items[0].transformer.attend
    assert heads.heads == 12 and heads.to_q.out_features == 12 * 64
    assert model.conditioner.max_tokens == 128 and unet.length_multiple == 32
    audio = model.generate("a dog barks", steps=1, seconds=0.01)
    assert audio.shape == (1, 2, 480)  # 48 kHz stereo


def test_text_and_timing_conditioners_together(registry):
    """``model.conditioners`` with the MiniLM text conditioner and ``core.timing`` (both 384
    wide): the frozen text model stays out of the weights, the timing value reaches the
    audio, and generate takes both by name."""
    model = generator(registry, "model.conditioner=null",
                      "model.conditioners={text: {name: mousai.minilm}, timing: {name: "
                      "core.timing, params: {dim: 384}}}")
    assert model.conditions == {"text": ("text",), "timing": ("seconds_start", "seconds_total")}
    assert not any("text_model" in k for k in model.state_dict())
    assert any(k.startswith("conditioners.timing.") for k in model.state_dict())
    short = model.generate({"text": TEXTS[0], "timing": 5}, seed=2, seconds=0.01)
    assert short.shape == (1, 2, 160)
    longer = model.generate({"text": TEXTS[0], "timing": "seconds_start=0,seconds_total=60"},
                            seed=2, seconds=0.01)
    assert not torch.equal(short, longer)
