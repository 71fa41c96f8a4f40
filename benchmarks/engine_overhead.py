"""Step time of a ZeRO-0 :class:`Engine` vs a plain PyTorch loop (single process, CPU).

    python benchmarks/engine_overhead.py [--steps 20 --rounds 5 --out engine_overhead.json]

Both loops run the same fp32 model, batch, AdamW, gradient clipping (1.0) and LambdaLR
schedule: forward, MSE loss, backward, optimizer step. Rounds of ``--steps`` steps
alternate between the two so machine noise hits both; the median round time per step is
reported with the ratio engine / plain (target <= 1.10). Model: a small 1-D conv
autoencoder, waveform (batch, 1, samples) -> (batch, 1, samples).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn


def conv_autoencoder() -> nn.Module:
    """(batch, 1, T) -> (batch, 1, T) for T divisible by 64; about 0.16 M parameters."""
    torch.manual_seed(0)
    chans = (1, 32, 64, 128)
    down = [m for a, b in itertools.pairwise(chans)
            for m in (nn.Conv1d(a, b, 8, stride=4, padding=2), nn.ELU())]
    rev = chans[::-1]
    up = [m for a, b in itertools.pairwise(rev)
          for m in (nn.ConvTranspose1d(a, b, 8, stride=4, padding=2), nn.ELU())]
    return nn.Sequential(*down, *up[:-1])


def time_steps(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--out", type=Path, default=Path("engine_overhead.json"))
    args = parser.parse_args()

    from audio_core.config.schema import RunConfig
    from audio_core.engine import Engine, distributed, lr_lambda

    distributed.init_distributed()
    cfg = RunConfig()
    cfg.data.batch_size = args.batch
    cfg.train.grad_clip = 1.0
    cfg.train.max_steps = 10**6
    cfg.train.optimizer.warmup_steps = 100
    cfg.deepspeed = {"config": "zero0"}
    x = torch.randn(args.batch, 1, args.samples)

    engine = Engine.from_config("model", conv_autoencoder(), cfg)

    def engine_step() -> None:
        engine.backward(nn.functional.mse_loss(engine(x), x))
        engine.step()

    model, opt_cfg = conv_autoencoder(), cfg.train.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=opt_cfg.lr, betas=tuple(opt_cfg.betas),
                            eps=opt_cfg.eps, weight_decay=opt_cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(opt_cfg, cfg.train.max_steps))

    def plain_step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x), x).backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        sched.step()

    for step in (engine_step, plain_step):  # warm-up: allocations, oneDNN kernels
        time_steps(step, 3)
    times: dict[str, list[float]] = {"engine": [], "plain": []}
    for _ in range(args.rounds):
        times["plain"].append(time_steps(plain_step, args.steps))
        times["engine"].append(time_steps(engine_step, args.steps))
    median = {k: statistics.median(v) for k, v in times.items()}
    ratio = median["engine"] / median["plain"]
    params = sum(p.numel() for p in model.parameters())
    print(f"model {params / 1e6:.2f} M params, batch {tuple(x.shape)}, "
          f"{args.rounds} rounds x {args.steps} steps, torch threads {torch.get_num_threads()}")
    print(f"{'loop':<8}{'median ms/step':>16}{'min':>10}{'max':>10}")
    for name, values in times.items():
        print(f"{name:<8}{median[name] * 1e3:>16.2f}{min(values) * 1e3:>10.2f}"
              f"{max(values) * 1e3:>10.2f}")
    print(f"engine / plain = {ratio:.3f} (target <= 1.10)")
    args.out.write_text(json.dumps({"params": params, "batch_shape": list(x.shape),
                                    "ms_per_step": {k: [t * 1e3 for t in v]
                                                    for k, v in times.items()},
                                    "median_ms": {k: v * 1e3 for k, v in median.items()},
                                    "ratio": ratio, "target": 1.10}, indent=2))
    print(f"wrote {args.out}")
    distributed.teardown()


if __name__ == "__main__":
    main()
