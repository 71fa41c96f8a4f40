"""Encode + decode speed of the ``vae.44khz_stereo`` preset (about 150M parameters), CPU.

    python benchmarks/vae_codec.py [--preset vae.44khz_stereo --seconds 5 --rounds 3 \
        --threads 2 --out vae_codec.json]

Builds the preset's model (random weights: speed does not depend on training) and times,
in inference mode on ``--seconds`` of audio at the preset's rate and channels, ``encode``
(waveform -> normalised posterior mean), ``decode`` (latent -> waveform) and both in a
row. Reports the best round and the real-time factor ``audio seconds / wall seconds``
(> 1: faster than real time), and the same from process CPU time (``audio seconds *
threads / CPU seconds``), steadier on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "vae"


def vae_registry():
    """audio-core's registry plus the vae plugin (installed or from the checkout)."""
    try:
        import audio_plugin_vae  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(PLUGIN))
    from audio_core.testing import PluginUnderTest

    return PluginUnderTest("vae", "audio-plugin-vae", "audio_plugin_vae.hooks").load().registry


def best_time(fn, rounds: int) -> tuple[float, float]:
    """``(wall seconds, process CPU seconds)`` of the fastest round (after a warm-up). On a
    shared machine the CPU seconds (all threads) are the steadier figure: CPU s / threads
    is about the wall time the run would take on idle cores."""
    fn()  # warm-up
    best = (float("inf"), float("inf"))
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="vae.44khz_stereo")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("vae_codec.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from audio_core.config import load_config
    from audio_core.models.build import build_model

    registry = vae_registry()
    cfg = load_config(args.preset, registry=registry)
    torch.manual_seed(0)
    model = build_model(cfg, registry).eval()
    sr, channels = model.sample_rate, model.channels
    x = 0.1 * torch.randn(1, channels, int(args.seconds * sr))
    with torch.inference_mode():
        latent = model.encode(x)

    def encode():
        with torch.inference_mode():
            model.encode(x)

    def decode():
        with torch.inference_mode():
            model.decode(latent, x.shape[-1])

    def both():
        with torch.inference_mode():
            model.decode(model.encode(x), x.shape[-1])

    rows = []
    for mode, fn in (("encode", encode), ("decode", decode), ("encode + decode", both)):
        wall, cpu = best_time(fn, args.rounds)
        rows.append({"mode": mode, "wall_s": wall, "rtf": args.seconds / wall, "cpu_s": cpu,
                     "rtf_cpu": args.seconds * args.threads / cpu})
    params = sum(p.numel() for p in model.parameters())
    result = {"preset": args.preset, "parameters": params, "sample_rate": sr,
              "channels": channels, "hop_length": model.hop_length,
              "latent_dim": model.latent_dim, "frame_rate": model.frame_rate,
              "audio_seconds": args.seconds, "threads": args.threads, "rounds": args.rounds,
              "results": rows}
    print(f"{args.preset}: {params / 1e6:.1f}M parameters, {sr} Hz x {channels} ch -> "
          f"{model.latent_dim} x {model.frame_rate:.2f} Hz latents, {args.threads} threads, "
          f"{args.seconds:g} s of audio, best of {args.rounds}")
    print(f"{'mode':<18}{'wall s':>10}{'x real time':>14}{'CPU s':>10}{'x RT (CPU)':>12}")
    for row in rows:
        print(f"{row['mode']:<18}{row['wall_s']:>10.3f}{row['rtf']:>14.2f}"
              f"{row['cpu_s']:>10.2f}{row['rtf_cpu']:>12.2f}")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
