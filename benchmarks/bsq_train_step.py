"""Training-step throughput of a BSQ preset, in seconds of audio per second (CPU, 1 process).

    python benchmarks/bsq_train_step.py [--preset bsq.small --batch 2 --steps 3]

Needs audio-plugin-bsq importable (installed, or ``PYTHONPATH=plugins/bsq``). Builds the
preset's task, its ``bsq.tokenizer`` model and a ZeRO-0 fp32 engine exactly as ``audio-core
train`` does, then times ``task.train_step`` (mel front end, SpecAugment, forward, losses,
backward, AdamW step) on a fixed random batch of ``--batch`` segments of
``data.segment_seconds`` (10.23 s for the small preset: 1024 mel frames, 512 tokens).
Reports the median step time and audio seconds per second on ``--threads`` CPU threads
(default 2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="bsq.small")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.precision=bf16")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                          str(Path.home() / ".cache" / "torch_extensions"))

    from audio_core.config import load_config
    from audio_core.engine.engine import Engine
    from audio_core.engine.trainer import build_task
    from audio_core.testing import PluginUnderTest

    registry = PluginUnderTest("bsq", "audio-plugin-bsq", "audio_plugin_bsq.hooks").load().registry
    cfg = load_config(args.preset, [f"data.batch_size={args.batch}", "train.precision=fp32",
                                    "deepspeed.zero_stage=0", *args.overrides],
                      registry=registry)
    torch.manual_seed(0)
    task = build_task(cfg, registry)
    modules = task.build_modules()
    engines = {role: Engine.from_config(role, modules[role], cfg, task.optimizer_config(role))
               for role in task.roles}
    task.attach(engines)
    samples = round(cfg.data.segment_seconds * cfg.data.sample_rate)
    batch = {"audio": 0.1 * torch.randn(args.batch, cfg.data.channels, samples),
             "mask": torch.ones(args.batch, samples, dtype=torch.bool)}
    for step in range(args.warmup):
        task.train_step(batch, step)
    times = []
    for step in range(args.steps):
        start = time.perf_counter()
        logs = task.train_step(batch, step)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    audio = args.batch * cfg.data.segment_seconds
    model = engines[task.roles[0]].module
    result = {"preset": args.preset, "batch": args.batch, "segment_seconds":
              cfg.data.segment_seconds, "threads": args.threads,
              "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
              "tokens_per_item": int(model.encode_mel(
                  model.mel_spectrogram(batch["audio"][:1])).shape[-1]),
              "s_per_step": round(seconds, 3), "audio_s_per_s": round(audio / seconds, 2),
              "loss": round(float(logs["loss/total"]), 4)}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
