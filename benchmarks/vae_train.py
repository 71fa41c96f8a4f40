"""Adversarial VAE training throughput (generator + discriminators), CPU.

    python benchmarks/vae_train.py [--preset vae.tiny --steps 10 --rounds 3 --threads 2 \
        --batch N --segment SECONDS --out vae_train.json]

Builds the preset's ``core.adversarial`` task with its two DeepSpeed engines in one
process (ZeRO-0, fp32; ``--batch``/``--segment`` shrink the preset's batch for the big
presets), and times full steps past the adversarial warm-up (VAE forward with the KL
bottleneck, discriminator update, generator update with reconstruction, KL, adversarial
and feature-matching terms) on synthetic audio. Reports seconds of audio trained per wall
second (best round), and the warm-up step (reconstruction + KL only) for comparison; the
same from process CPU time (``audio seconds * threads / CPU seconds``) is steadier on a
shared machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vae_codec import vae_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="vae.tiny")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="override data.batch_size")
    parser.add_argument("--segment", type=float, default=None,
                        help="override data.segment_seconds")
    parser.add_argument("--out", type=Path, default=Path("vae_train.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from audio_core.config import load_config
    from audio_core.engine import Engine, distributed
    from audio_core.engine.trainer import build_task

    registry = vae_registry()
    overrides = ["deepspeed.zero_stage=0", "train.precision=fp32"]
    if args.batch is not None:
        overrides.append(f"data.batch_size={args.batch}")
    if args.segment is not None:
        overrides.append(f"data.segment_seconds={args.segment}")
    cfg = load_config(args.preset, overrides, registry=registry)
    distributed.init_distributed()
    torch.manual_seed(0)
    task = build_task(cfg, registry)
    modules = task.build_modules()
    engines = {role: Engine.from_config(role, modules[role], cfg, task.optimizer_config(role))
               for role in task.roles}
    task.attach(engines)
    n, sr, ch = cfg.data.batch_size, cfg.data.sample_rate, cfg.data.channels
    samples = round(cfg.data.segment_seconds * sr)
    g = torch.Generator().manual_seed(0)
    batches = [{"audio": 0.1 * torch.randn(n, ch, samples, generator=g),
                "mask": torch.ones(n, samples, dtype=torch.bool)} for _ in range(4)]
    audio_per_step = n * samples / sr
    warmup = task.warmup_steps

    def rate(step: int) -> tuple[float, float]:
        """Per step: ``(wall s, process CPU s)`` of the fastest round."""
        best = (float("inf"), float("inf"))
        for r in range(args.rounds + 1):  # the first round warms up
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(args.steps):
                task.set_step(step)
                task.train_step(batches[i % len(batches)], step)
            if r:
                best = min(best, ((time.perf_counter() - wall) / args.steps,
                                  (time.process_time() - cpu) / args.steps))
        return best

    rows = []
    for mode, step in (("generator + discriminators", warmup),
                       ("generator only (warm-up)", 0)):
        wall, cpu = rate(step)
        rows.append({"mode": mode, "step_s": wall, "audio_s_per_s": audio_per_step / wall,
                     "cpu_s": cpu, "audio_s_per_s_cpu": audio_per_step * args.threads / cpu})
    gp = sum(p.numel() for p in modules["generator"].parameters())
    dp = sum(p.numel() for p in modules["discriminator"].parameters())
    result = {"preset": args.preset, "generator_parameters": gp, "discriminator_parameters": dp,
              "batch": n, "segment_seconds": samples / sr, "sample_rate": sr, "channels": ch,
              "threads": args.threads, "steps": args.steps, "rounds": args.rounds,
              "results": rows}
    print(f"{args.preset}: G {gp / 1e6:.2f}M + D {dp / 1e6:.2f}M parameters, batch {n} x "
          f"{samples / sr:.3g} s at {sr} Hz x {ch} ch, {args.threads} threads")
    print(f"{'mode':<28}{'step s':>9}{'audio s/s':>11}{'CPU s':>9}{'audio s/s (CPU)':>17}")
    for row in rows:
        print(f"{row['mode']:<28}{row['step_s']:>9.3f}{row['audio_s_per_s']:>11.2f}"
              f"{row['cpu_s']:>9.3f}{row['audio_s_per_s_cpu']:>17.2f}")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
