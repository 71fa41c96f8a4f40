"""``audio-core reconstruct``: run a trained model over an audio file."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser(
        "reconstruct", help="reconstruct an audio file with a trained model",
        description="Load MODEL (an export folder or a run folder), resample IN to the "
                    "model's rate and channels, reconstruct it in overlapping chunks and "
                    "write OUT, plus OUT.json (SI-SDR, mel distance, L1) and OUT.png "
                    "(original and reconstructed spectrograms).")
    r.add_argument("model", metavar="MODEL")
    r.add_argument("input", metavar="IN")
    r.add_argument("output", metavar="OUT")
    r.add_argument("--chunk-seconds", type=float, default=10.0,
                   help="process long files in chunks of this length (default 10)")
    r.add_argument("--no-report", action="store_true", help="write only the audio")
    r.add_argument("--ema", action="store_true", help="use EMA weights (run folders)")
    r.set_defaults(handler=run_reconstruct)


def run_reconstruct(args: argparse.Namespace) -> int:
    from audio_core.engine.export import load
    from audio_core.inference.reconstruct import reconstruct_file

    model = load(args.model, ema=args.ema)
    metrics = reconstruct_file(model, args.input, args.output, report=not args.no_report,
                               chunk_seconds=args.chunk_seconds)
    print(json.dumps(metrics, indent=2))
    return 0
