"""RAE stage-1 training-step throughput: the frozen encoder computed on the fly vs
pre-encoded latents (CPU, 1 process).

    python benchmarks/rae_stage1.py [--preset rae.wav2vec2_tiny --batch 8 --steps 5]
    python benchmarks/rae_stage1.py --preset rae.wav2vec2_base --random-encoder --batch 2 \\
        data.segment_seconds=2.0 model.encoder.params.max_duration=2.0

Needs audio-plugin-rae importable (installed, or ``PYTHONPATH=plugins/rae``). Builds the
preset's task (``core.frozen_encoder``), its ``rae.autoencoder`` model and a ZeRO-0 fp32
engine as ``audio-core train`` does, then times ``task.train_step`` (encoder, latent
normalisation and noise, decoder, losses, backward, AdamW step) on a fixed random batch:

1. *on the fly*: the frozen encoder runs in every step (what the task does);
2. *pre-encoded*: the same step with the encoder's latents computed once beforehand and
   handed in (``model.encode_latent`` replaced by a lookup), i.e. what a stage-1 run on
   latents stored by ``audio-core latents`` would cost.

``--random-encoder`` replaces a pretrained encoder by a random-init one of the same
architecture (``pretrained`` -> ``config: {}``: the base model's compute without its
weights, which are not downloadable here). Reports median seconds per step and seconds
of audio per second for both, their ratio and the encoder's share of the step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch


def timed(step, steps: int, warmup: int) -> float:
    for i in range(warmup):
        step(i)
    times = []
    for i in range(steps):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="rae.wav2vec2_tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--random-encoder", action="store_true",
                        help="random-init encoder of the preset's architecture")
    parser.add_argument("overrides", nargs="*", help="config overrides")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                          str(Path.home() / ".cache" / "torch_extensions"))

    from audio_core.config import load_config
    from audio_core.engine.engine import Engine
    from audio_core.engine.trainer import build_task
    from audio_core.testing import PluginUnderTest

    registry = PluginUnderTest("rae", "audio-plugin-rae", "audio_plugin_rae.hooks").load().registry
    swap = ["model.encoder.params.pretrained=null", "model.encoder.params.config={}"] \
        if args.random_encoder else []
    cfg = load_config(args.preset, [f"data.batch_size={args.batch}", "train.precision=fp32",
                                    "deepspeed.zero_stage=0", *swap, *args.overrides],
                      registry=registry)
    torch.manual_seed(0)
    task = build_task(cfg, registry)
    modules = task.build_modules()
    engines = {role: Engine.from_config(role, modules[role], cfg, task.optimizer_config(role))
               for role in task.roles}
    task.attach(engines)
    model = engines["generator"].module
    samples = round(cfg.data.segment_seconds * cfg.data.sample_rate)
    audio = 0.1 * torch.randn(args.batch, cfg.data.channels, samples,
                              generator=torch.Generator().manual_seed(0))
    batch = {"audio": audio, "mask": torch.ones(args.batch, samples, dtype=torch.bool)}

    on_the_fly = timed(lambda i: task.train_step(batch, i), args.steps, args.warmup)
    encode = model.encode_latent
    encoder_only = timed(lambda i: encode(audio), args.steps, args.warmup)
    latent = encode(audio)
    model.encode_latent = lambda waveform: latent  # the pre-encoded latents, looked up
    pre_encoded = timed(lambda i: task.train_step(batch, i), args.steps, args.warmup)

    seconds = args.batch * cfg.data.segment_seconds
    encoder = model.encoder_module()
    result = {
        "preset": args.preset, "random_encoder": args.random_encoder, "batch": args.batch,
        "segment_seconds": cfg.data.segment_seconds, "threads": args.threads,
        "encoder": type(encoder).__name__,
        "encoder_parameters_m": round(sum(p.numel() for p in encoder.parameters()) / 1e6, 2),
        "decoder_parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "latent": list(latent.shape[1:]),
        "on_the_fly_s_per_step": round(on_the_fly, 3),
        "on_the_fly_audio_s_per_s": round(seconds / on_the_fly, 2),
        "pre_encoded_s_per_step": round(pre_encoded, 3),
        "pre_encoded_audio_s_per_s": round(seconds / pre_encoded, 2),
        "speedup": round(on_the_fly / pre_encoded, 2),
        "encoder_forward_s": round(encoder_only, 3),
        "encoder_share": round(encoder_only / on_the_fly, 3),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
