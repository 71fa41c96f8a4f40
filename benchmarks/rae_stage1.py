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


def timed(step, steps: int, warmup: int) -> tuple[float, float]:
    """Median wall-clock and process CPU seconds (all threads) of ``step(i)``."""
    for i in range(warmup):
        step(i)
    wall, cpu = [], []
    for i in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        step(i)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def prepare(args: argparse.Namespace) -> tuple[object, list[str]]:
    """Set the thread count and op cache; the rae registry and the random-encoder overrides."""
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                          str(Path.home() / ".cache" / "torch_extensions"))
    from audio_core.testing import PluginUnderTest

    registry = PluginUnderTest("rae", "audio-plugin-rae", "audio_plugin_rae.hooks").load().registry
    swap = ["model.encoder.params.pretrained=null", "model.encoder.params.config={}"] \
        if args.random_encoder else []
    return registry, swap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="rae.wav2vec2_tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a busy 2-core machine two "
                             "threads per process are many times slower)")
    parser.add_argument("--random-encoder", action="store_true",
                        help="random-init encoder of the preset's architecture")
    parser.add_argument("overrides", nargs="*", help="config overrides")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    registry, swap = prepare(args)

    from audio_core.config import load_config
    from audio_core.engine.engine import Engine
    from audio_core.engine.trainer import build_task
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

    def figures(measured: tuple[float, float]) -> dict[str, float]:
        wall, cpu = measured
        return {"s_per_step": round(wall, 3), "cpu_s_per_step": round(cpu, 3),
                "audio_s_per_s": round(seconds / wall, 2),
                "audio_s_per_cpu_s": round(seconds / cpu, 2)}

    result = {
        "preset": args.preset, "random_encoder": args.random_encoder, "batch": args.batch,
        "segment_seconds": cfg.data.segment_seconds, "threads": args.threads,
        "encoder": type(encoder).__name__,
        "encoder_parameters_m": round(sum(p.numel() for p in encoder.parameters()) / 1e6, 2),
        "decoder_parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "latent": list(latent.shape[1:]),
        "on_the_fly": figures(on_the_fly),
        "pre_encoded": figures(pre_encoded),
        "speedup": round(on_the_fly[0] / pre_encoded[0], 2),
        "speedup_cpu": round(on_the_fly[1] / pre_encoded[1], 2),
        "encoder_forward": figures(encoder_only),
        "encoder_share_cpu": round(encoder_only[1] / on_the_fly[1], 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
