"""``audio-core frames``: a sub-command this plugin adds (the ``command`` kind)."""

from __future__ import annotations

import argparse
import math

from audio_core.errors import AudioCoreError


class FramesCommand:
    """How many latent frames ``example.frame_encoder`` makes for a clip."""

    description = "latent frames example.frame_encoder makes for a clip of N seconds"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("seconds", type=float, help="clip length in seconds (> 0)")
        parser.add_argument("--sample-rate", type=int, default=16000,
                            help="samples per second (default 16000)")
        parser.add_argument("--hop-length", type=int, default=160,
                            help="the encoder's samples per frame (default 160)")

    def run(self, args: argparse.Namespace) -> int:
        for flag, value in (("seconds", args.seconds), ("--sample-rate", args.sample_rate),
                            ("--hop-length", args.hop_length)):
            if not math.isfinite(value) or value <= 0 or value > 1e7:
                raise AudioCoreError(f"{flag}: {value} is not a number in (0, 1e7]")
        samples = round(args.seconds * args.sample_rate)
        print(f"{samples} samples -> {math.ceil(samples / args.hop_length)} frames")
        return 0
