"""Moûsai diffusion-autoencoder training step (mousai.autoencoder task), CPU.

    python benchmarks/mousai_autoencoder_train.py [--steps 5 --rounds 2 --threads 2 \
        --batch 2 --samples 32768 --out mousai_autoencoder_train.json]

The configuration audio-diffusion-pytorch's ``DiffusionAE`` was measured at (about 0.64 s per
step for 2 x 32,768 stereo samples at 48 kHz, ~6 M parameters, 2 CPU threads; that package
needs torchaudio, so the two are compared side by side, not in one process): the README's
``DiffusionAE`` layout (a magnitude-spectrogram encoder with a tanh bottleneck, 32 latent
channels, 512 samples per latent frame; a U-Net with factors [1, 4, 4, 4, 2, 2, 2, 2, 2] and
items [1, 2, 2, 2, 2, 2, 2, 4, 4], the latent injected at depth 6, where one frame spans 512
samples) with its widths shrunk to about
6 M parameters. Builds the task with its DeepSpeed engine in one process (ZeRO-0, fp32) and
times full steps (encode, v-diffusion forward, backward, optimizer step) on random audio.
Reports seconds per step (best round) and process CPU seconds per step.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

#: The DiffusionAE layout at ~6 M parameters (see the module docstring).
OVERRIDES = [
    "data.sample_rate=48000", "data.channels=2",
    "model.encoder.params.n_fft=1024", "model.encoder.params.stft_hop=256",
    "model.encoder.params.widths=[128,128]", "model.encoder.params.factors=[2]",
    "model.encoder.params.blocks=2", "model.encoder.params.latent_dim=32",
    "model.denoiser.params.patch_size=1",
    "model.denoiser.params.channels=[8,32,64,96,128,128,128,128,128]",
    "model.denoiser.params.factors=[1,4,4,4,2,2,2,2,2]",
    "model.denoiser.params.items=[1,2,2,2,2,2,2,4,4]",
    "model.denoiser.params.attentions=[0,0,0,0,0,0,0,0,0]",
    "model.denoiser.params.inject_depth=6", "model.denoiser.params.emb_dim=128",
    "model.params.scale=1.0", "deepspeed.zero_stage=0", "train.precision=fp32",
]


def registry():
    """audio-core's registry with the mousai plugin (installed, or from this checkout)."""
    import sys

    from audio_core.testing import PluginUnderTest

    plugin = Path(__file__).resolve().parents[1] / "plugins" / "mousai"
    if str(plugin) not in sys.path:
        sys.path.insert(0, str(plugin))
    return PluginUnderTest("mousai", "audio-plugin-mousai", "audio_plugin_mousai.hooks"
                           ).load().registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--out", type=Path, default=Path("mousai_autoencoder_train.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from audio_core.config import load_config
    from audio_core.engine import Engine, distributed
    from audio_core.engine.trainer import build_task

    reg = registry()
    cfg = load_config("mousai.tiny_dae", [
        *OVERRIDES, f"data.batch_size={args.batch}",
        f"data.segment_seconds={args.samples / 48000}"], registry=reg)
    distributed.init_distributed()
    torch.manual_seed(0)
    task = build_task(cfg, reg)
    modules = task.build_modules()
    engines = {role: Engine.from_config(role, modules[role], cfg, task.optimizer_config(role))
               for role in task.roles}
    task.attach(engines)
    model = modules["generator"]
    g = torch.Generator().manual_seed(0)
    batches = [{"audio": 0.1 * torch.randn(args.batch, 2, args.samples, generator=g)}
               for _ in range(2)]
    best = (float("inf"), float("inf"))
    for r in range(args.rounds + 1):  # the first round warms up
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(args.steps):
            task.set_step(i)
            task.train_step(batches[i % 2], i)
        if r:
            best = min(best, ((time.perf_counter() - wall) / args.steps,
                              (time.process_time() - cpu) / args.steps))
    params = {"encoder": sum(p.numel() for p in model.encoder.parameters()),
              "denoiser": sum(p.numel() for p in model.denoiser.parameters())}
    result = {"parameters": params, "total_parameters": sum(params.values()),
              "batch": args.batch, "samples": args.samples, "sample_rate": 48000,
              "channels": 2, "threads": args.threads, "steps": args.steps,
              "rounds": args.rounds, "step_s": best[0], "cpu_s_per_step": best[1],
              "overrides": OVERRIDES}
    print(f"mousai diffusion autoencoder: {sum(params.values()) / 1e6:.2f} M parameters "
          f"(encoder {params['encoder'] / 1e6:.2f} M, U-Net {params['denoiser'] / 1e6:.2f} M), "
          f"batch {args.batch} x {args.samples} stereo samples, {args.threads} threads")
    print(f"step: {best[0]:.3f} s wall, {best[1]:.3f} s process CPU")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
