"""BSQ quantizer throughput and extra peak memory: forward + backward with the entropy loss.

    python benchmarks/bsq_quantizer.py [--bits 18 --batch 8 --tokens 512 --group-size 9]

Needs audio-plugin-bsq importable (installed, or ``PYTHONPATH=plugins/bsq``). Runs on 2 CPU
threads. One iteration: ``BinarySphericalQuantizer(bits)`` on a latent ``(batch, bits,
tokens)`` (no projections: the quantizer alone), loss = quantizer loss (commitment +
per-sample entropy - codebook entropy, grouped) + a reconstruction stand-in, backward.
Extra peak memory is the peak resident set size, sampled every 0.5 ms during three more
iterations (after the timed ones), minus the resident size before them. Targets (issue 5):
>= 100,000 vectors/s and < 200 MB for 18 bits x 8 x 512 vectors. A dense entropy over 2^18
codes would need a (4096, 262144) table: > 4 GB and about 65 vectors/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

import torch

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS(threading.Thread):
    """Samples the resident set size until stopped; ``peak`` in bytes."""

    def __init__(self, every: float = 5e-4) -> None:
        super().__init__(daemon=True)
        self.every, self.peak, self._stop_flag = every, rss(), threading.Event()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(self.every)

    def stop(self) -> int:
        self._stop_flag.set()
        self.join()
        return max(self.peak, rss())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bits", type=int, default=18)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--group-size", type=int, default=9)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from audio_plugin_bsq.quantizer import BinarySphericalQuantizer

    torch.manual_seed(0)
    quantizer = BinarySphericalQuantizer(args.bits, group_size=args.group_size)
    latent = torch.randn(args.batch, args.bits, args.tokens, requires_grad=True)
    target = torch.randn(args.batch, args.bits, args.tokens)

    def step() -> None:
        out = quantizer(latent)
        loss = out.loss + (out.latent - target).square().mean()
        loss.backward()
        latent.grad = None

    for _ in range(3):
        step()
    rounds = []
    for _ in range(args.rounds):  # timing first: a sampling thread would contend for the GIL
        start = time.perf_counter()
        for _ in range(args.iters):
            step()
        rounds.append((time.perf_counter() - start) / args.iters)
    before = rss()
    sampler = PeakRSS()
    sampler.start()
    for _ in range(3):
        step()
    peak = sampler.stop()
    vectors = args.batch * args.tokens
    seconds = statistics.median(rounds)
    result = {"bits": args.bits, "vectors": vectors, "group_size": args.group_size,
              "threads": args.threads, "ms_per_iter": round(seconds * 1e3, 3),
              "vectors_per_s": round(vectors / seconds),
              "extra_peak_mb": round((peak - before) / 2**20, 1),
              "targets": {"vectors_per_s": 100_000, "extra_peak_mb": 200}}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
