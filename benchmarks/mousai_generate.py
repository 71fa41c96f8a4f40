"""Moûsai text-to-audio generation speed (seconds of audio per second), CPU.

    python benchmarks/mousai_generate.py [--stage1 tiny|ae6m --seconds 6 --steps 50 \
        --decode-steps 50 --guidance 5 --threads 2 --out mousai_generate.json]

What ``audio-core generate MODEL --text ... --steps 50 --decode-steps 50`` runs: the text
conditioner (the offline ``mousai.minilm``), 50 guided sampler steps of the stage-2 U-Net on
the latents (``mousai.tiny_generator``), then 50 sampler steps of the stage-1 diffusion
decoder. Stage 1 is ``mousai.tiny_dae`` (16 kHz stereo, hop 256) or ``ae6m``, the
~6 M-parameter 48 kHz DiffusionAE configuration of ``mousai_autoencoder_train.py``.
Weights are random (speed does not depend on them); stage 1 is saved as an export the
stage-2 model names, as a trained one would be. Reports the wall time of each part and
seconds of audio per second.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from mousai_autoencoder_train import OVERRIDES, registry


def stage1_export(reg, which: str, folder: Path) -> Path:
    from audio_core.config import load_config, to_yaml
    from audio_core.models.build import build_model
    from audio_core.storage.checkpoint import save_safetensors

    overrides = [o for o in OVERRIDES if not o.startswith(("deepspeed", "train"))] \
        if which == "ae6m" else []
    cfg = load_config("mousai.tiny_dae", overrides, registry=reg)
    torch.manual_seed(0)
    model = build_model(cfg, reg).eval()
    for p in model.denoiser.parameters():  # a zero output layer would skip no work, but
        if not p.any():                     # keep the numbers those of a trained model
            torch.nn.init.normal_(p, std=0.02)
    folder.mkdir(parents=True)
    save_safetensors(model.state_dict(), folder / "model.safetensors")
    (folder / "config.yaml").write_text(to_yaml(cfg))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage1", choices=("tiny", "ae6m"), default="tiny")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--decode-steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text", default="a bird chirps")
    parser.add_argument("--out", type=Path, default=Path("mousai_generate.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from audio_core.config import load_config
    from audio_core.models.build import build_model

    reg = registry()
    with tempfile.TemporaryDirectory() as tmp:
        export = stage1_export(reg, args.stage1, Path(tmp) / "stage1")
        cfg = load_config("mousai.tiny_generator", [f"model.params.stage1={export}"],
                          registry=reg)
        torch.manual_seed(0)
        model = build_model(cfg, reg).eval()
        for p in model.denoiser.parameters():
            if not p.any():
                torch.nn.init.normal_(p, std=0.02)
        frames = model.num_frames(args.seconds)
        length = round(args.seconds * model.sample_rate)
        model.generate(args.text, steps=2, decode_steps=2, seconds=0.1)  # warm up
        wall = time.perf_counter()
        latent = model.sample_latents(args.text, 1, args.steps, args.guidance, 0, frames)
        sampled = time.perf_counter()
        audio = model.to_audio(latent, length, args.decode_steps)
        decoded = time.perf_counter()
    assert audio.shape == (1, model.channels, length)
    total = decoded - wall
    result = {"stage1": args.stage1, "sample_rate": model.sample_rate,
              "channels": model.channels, "seconds": args.seconds, "steps": args.steps,
              "decode_steps": args.decode_steps, "guidance": args.guidance,
              "threads": args.threads,
              "stage1_parameters": sum(p.numel() for p in model.stage1.parameters()),
              "stage2_parameters": sum(p.numel() for p in model.parameters()),
              "latent_s": sampled - wall, "decode_s": decoded - sampled, "total_s": total,
              "audio_s_per_s": args.seconds / total}
    print(f"stage 1 {args.stage1} ({result['stage1_parameters'] / 1e6:.2f} M), stage 2 "
          f"{result['stage2_parameters'] / 1e6:.2f} M; {args.seconds} s at "
          f"{model.sample_rate} Hz stereo, {args.steps} + {args.decode_steps} steps, "
          f"guidance {args.guidance}, {args.threads} threads")
    print(f"latents {result['latent_s']:.2f} s, decode {result['decode_s']:.2f} s, total "
          f"{total:.2f} s: {result['audio_s_per_s']:.3f} s of audio per second")
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
