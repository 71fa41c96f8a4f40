"""GAN training throughput of the ``soundstream.tiny`` preset (generator + discriminator), CPU.

    python benchmarks/soundstream_train.py [--steps 10 --rounds 3 --threads 2 \
        --preset soundstream.tiny --out soundstream_train.json]

Builds the preset's adversarial task with its two DeepSpeed engines in one process (ZeRO-0,
fp32), and times full steps past the adversarial warm-up: G forward, D update, G update
with adversarial and feature-matching terms, on the preset's batch of synthetic audio.
Reports seconds of audio trained per wall second (best round), and the generator-only
(warm-up) step for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soundstream_codec import soundstream_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="soundstream.tiny")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("soundstream_train.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from audio_core.config import load_config
    from audio_core.config.build import build_dataset
    from audio_core.engine import Engine, distributed
    from audio_core.engine.trainer import build_task

    registry = soundstream_registry()
    cfg = load_config(args.preset, ["deepspeed.zero_stage=0"], registry=registry)
    distributed.init_distributed()
    torch.manual_seed(0)
    task = build_task(cfg, registry)
    modules = task.build_modules()
    engines = {role: Engine.from_config(role, modules[role], cfg, task.optimizer_config(role))
               for role in task.roles}
    task.attach(engines)
    data = build_dataset(cfg, "train", registry=registry)
    n = cfg.data.batch_size
    batches = [{k: torch.stack([data[i + j][k] for j in range(n)]) for k in ("audio", "mask")}
               for i in range(0, 4 * n, n)]
    audio_per_step = n * cfg.data.segment_seconds
    warmup = task.warmup_steps

    def rate(step: int) -> float:
        best = float("inf")
        for r in range(args.rounds + 1):  # the first round warms up
            start = time.perf_counter()
            for i in range(args.steps):
                task.train_step(batches[i % len(batches)], step)
            if r:
                best = min(best, (time.perf_counter() - start) / args.steps)
        return best

    rows = []
    for mode, step in (("generator + discriminator", warmup), ("generator only (warm-up)", 0)):
        seconds = rate(step)
        rows.append({"mode": mode, "step_s": seconds, "audio_s_per_s": audio_per_step / seconds})
    g = sum(p.numel() for p in modules["generator"].parameters())
    d = sum(p.numel() for p in modules["discriminator"].parameters())
    result = {"preset": args.preset, "generator_parameters": g, "discriminator_parameters": d,
              "batch": n, "segment_seconds": cfg.data.segment_seconds,
              "sample_rate": cfg.data.sample_rate, "threads": args.threads,
              "steps": args.steps, "rounds": args.rounds, "results": rows}
    print(f"{args.preset}: G {g / 1e3:.0f}k + D {d / 1e3:.0f}k parameters, batch {n} x "
          f"{cfg.data.segment_seconds:g} s at {cfg.data.sample_rate} Hz, {args.threads} threads")
    print(f"{'mode':<28}{'step s':>9}{'audio s/s':>11}")
    for row in rows:
        print(f"{row['mode']:<28}{row['step_s']:>9.3f}{row['audio_s_per_s']:>11.2f}")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
