"""Residual VQ (``core.rvq``) throughput: 8 x 1024 EMA codebooks, dim 128, 2,400 vectors, CPU.

    python benchmarks/rvq.py [--vectors 2400 --rounds 10 --threads 2 --out rvq.json]

One training-mode forward (nearest codes for all 8 stages, EMA codebook updates, dead-code
check, commitment loss, metrics) plus the backward of a loss on the quantized latent, on a
latent ``(batch 8, dim 128, frames vectors / 8)``. Reports the best round as vectors per
second (target >= 30,000), and eval-mode encode alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from audio_core.plugins import get_registry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soundstream_codec import best_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vectors", type=int, default=2400)
    parser.add_argument("--codebooks", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("rvq.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    rvq = get_registry().build("quantizer", "core.rvq",
                               {"dim": args.dim, "num_codebooks": args.codebooks,
                                "codebook_size": args.size, "dropout_prob": 0.0}).train()
    latent = torch.randn(8, args.dim, args.vectors // 8, requires_grad=True)
    rvq(latent)  # k-means initialisation on the first batch (not timed)

    def train_step():
        out = rvq(latent)
        (out.latent.pow(2).mean() + out.loss).backward()

    def encode():
        rvq.encode(latent.detach())

    rows = []
    for mode, fn in (("train forward+backward", train_step), ("eval encode", encode)):
        seconds = best_time(fn, args.rounds)
        rows.append({"mode": mode, "wall_s": seconds, "vectors_per_s": args.vectors / seconds})
    result = {"codebooks": args.codebooks, "codebook_size": args.size, "dim": args.dim,
              "vectors": args.vectors, "threads": args.threads, "rounds": args.rounds,
              "results": rows, "target_vectors_per_s": 30000}
    print(f"RVQ {args.codebooks} x {args.size}, dim {args.dim}, {args.vectors} vectors, "
          f"{args.threads} threads, best of {args.rounds}")
    print(f"{'mode':<26}{'wall ms':>10}{'vectors/s':>12}")
    for row in rows:
        print(f"{row['mode']:<26}{row['wall_s'] * 1e3:>10.1f}{row['vectors_per_s']:>12,.0f}")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
