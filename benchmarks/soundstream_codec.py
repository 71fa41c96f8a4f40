"""Encode+decode speed of the ``soundstream.24khz`` preset (about 15M parameters), CPU.

    python benchmarks/soundstream_codec.py [--seconds 10 --rounds 5 --threads 2 \
        --out soundstream_codec.json]

Builds the preset's generator (random weights: speed does not depend on training), then
times ``decode(quantize(encode(x)))`` on ``--seconds`` of 24 kHz mono audio in inference
mode, offline and in 1-second streaming chunks. Reports the best round and the real-time
factor ``audio seconds / wall seconds`` (target >= 20).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "soundstream"


def soundstream_registry():
    """audio-core's registry plus the soundstream plugin (installed or from the checkout)."""
    try:
        import audio_plugin_soundstream  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(PLUGIN))
    from audio_core.testing import PluginUnderTest

    return PluginUnderTest("soundstream", "audio-plugin-soundstream",
                           "audio_plugin_soundstream.hooks").load().registry


def build_preset(name: str):
    """The model (an ``AudioAutoencoder``) of preset ``name``, in eval mode."""
    from audio_core.config import load_config
    from audio_core.models.build import build_model

    registry = soundstream_registry()
    cfg = load_config(name, registry=registry)
    torch.manual_seed(0)
    return cfg, build_model(cfg, registry).eval()


def best_time(fn, rounds: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("soundstream_codec.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg, model = build_preset("soundstream.24khz")
    from audio_plugin_soundstream.streaming import StreamingCodec

    sr = cfg.data.sample_rate
    x = torch.randn(1, 1, int(args.seconds * sr)) * 0.1
    params = sum(p.numel() for p in model.parameters())
    codec = StreamingCodec.from_autoencoder(model)

    def offline():
        with torch.inference_mode():
            model.decode_codes(model.encode_codes(x), x.shape[-1])

    def streaming():
        with torch.inference_mode():
            codec.run(torch.split(x, sr, dim=-1))

    rows = []
    for mode, fn in (("offline", offline), ("streaming (1 s chunks)", streaming)):
        seconds = best_time(fn, args.rounds)
        rows.append({"mode": mode, "wall_s": seconds, "rtf": args.seconds / seconds})
    result = {"preset": "soundstream.24khz", "parameters": params, "sample_rate": sr,
              "frame_rate": model.frame_rate,
              "bitrate_bps": model.quantizer.bitrate(model.frame_rate),
              "audio_seconds": args.seconds, "threads": args.threads, "rounds": args.rounds,
              "results": rows, "target_rtf": 20.0}
    print(f"soundstream.24khz: {params / 1e6:.2f}M parameters, "
          f"{result['bitrate_bps']:.0f} bit/s, {args.threads} threads, "
          f"{args.seconds:g} s of audio, best of {args.rounds}")
    print(f"{'mode':<24}{'wall s':>10}{'x real time':>14}")
    for row in rows:
        print(f"{row['mode']:<24}{row['wall_s']:>10.3f}{row['rtf']:>14.1f}")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
