"""RAE stage 2: DiT training-step throughput and generation speed at 50 sampler steps
(CPU, 1 process).

    python benchmarks/rae_stage2.py [--preset rae.dit_tiny --batch 8 --steps 5]
    python benchmarks/rae_stage2.py --stage1 rae.wav2vec2_base --random-encoder \\
        model.denoiser.params.width=384 model.denoiser.params.depth=12 ...

Needs audio-plugin-rae importable (installed, or ``PYTHONPATH=plugins/rae``). A stage-1
export is written to a temporary folder from ``--stage1`` (a preset, built untrained and
seeded: its latents' shape and the decoding cost do not depend on its weights;
``--random-encoder`` as in ``rae_stage1.py``), and the stage-2 model of ``--preset`` is
built on it as ``audio-core train`` would (``rae.dit`` denoiser, class conditioner,
rectified flow with the size-dependent shift). Measured:

1. training: one ``core.diffusion`` step (time sampling, noising, class dropout, DiT
   forward, velocity loss, backward, AdamW step) on ``--batch`` latents of
   ``data.segment_seconds``, through a ZeRO-0 fp32 engine, median of ``--steps``;
2. generation: ``model.generate`` of ``--samples`` clips of ``--seconds`` with 50 Euler
   steps and classifier-free guidance (two DiT passes per step), split into latent
   sampling and stage-1 decoding; real-time factor = seconds of audio per second.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch
from rae_stage1 import prepare, timed  # benchmarks/ is on sys.path when run as a script


def write_stage1(root: Path, preset: str, overrides: list[str], registry) -> Path:
    from audio_core.config import load_config, to_yaml
    from audio_core.models.build import build_model
    from audio_core.storage.checkpoint import save_safetensors

    cfg = load_config(preset, overrides, registry=registry)
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg, registry)
    out = root / "stage1"
    out.mkdir()
    save_safetensors(model.state_dict(), out / "model.safetensors")
    (out / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="rae.dit_tiny")
    parser.add_argument("--stage1", default="rae.wav2vec2_tiny")
    parser.add_argument("--random-encoder", action="store_true")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sampler-steps", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a busy 2-core machine two "
                             "threads per process are many times slower)")
    parser.add_argument("overrides", nargs="*", help="stage-2 config overrides")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    registry, swap = prepare(args)

    from audio_core.config import load_config
    from audio_core.engine.engine import Engine
    from audio_core.engine.trainer import build_task

    with tempfile.TemporaryDirectory() as tmp:
        stage1 = write_stage1(Path(tmp), args.stage1, swap, registry)
        cfg = load_config(args.preset, [f"model.params.stage1={stage1}",
                                        f"data.batch_size={args.batch}",
                                        "train.precision=fp32", "deepspeed.zero_stage=0",
                                        *args.overrides], registry=registry)
        torch.manual_seed(0)
        task = build_task(cfg, registry)
        modules = task.build_modules()
        engines = {role: Engine.from_config(role, modules[role], cfg,
                                            task.optimizer_config(role))
                   for role in task.roles}
        task.attach(engines)
        model = engines["denoiser"].module
        frames = model.num_frames(cfg.data.segment_seconds)
        g = torch.Generator().manual_seed(0)
        classes = model.conditioner.num_classes
        batch = {"latent": torch.randn(args.batch, model.latent_dim, frames, generator=g),
                 "label": torch.randint(0, classes, (args.batch,), generator=g)}
        train = timed(lambda i: task.train_step(batch, i), args.steps, args.warmup)

        model.eval()
        label = (model.conditioner.classes or [0])[0]
        generated = {}

        def sample(i: int) -> None:
            generated["latent"] = model.sample_latents(
                label, args.samples, steps=args.sampler_steps, seed=i,
                frames=model.num_frames(args.seconds))

        latents = timed(sample, 1, 1)
        length = round(args.seconds * model.sample_rate)
        decode = timed(lambda i: model.to_audio(generated["latent"], length), 1, 1)
        total = latents[0] + decode[0]
        total_cpu = latents[1] + decode[1]
        audio = args.samples * args.seconds
        denoiser = model.denoiser
        result = {
            "preset": args.preset, "stage1": args.stage1, "threads": args.threads,
            "latent": [model.latent_dim, frames], "batch": args.batch,
            "dit_parameters_m": round(sum(p.numel() for p in denoiser.parameters()) / 1e6, 2),
            "dit": {"width": denoiser.width, "depth": len(denoiser.blocks),
                    "head_depth": denoiser.head_depth},
            "shift": round(model.objective.shift_for(model.latent_dim * frames), 3),
            "train_s_per_step": round(train[0], 3),
            "train_cpu_s_per_step": round(train[1], 3),
            "train_latent_s_per_s": round(args.batch * cfg.data.segment_seconds / train[0], 2),
            "train_latent_s_per_cpu_s": round(args.batch * cfg.data.segment_seconds / train[1],
                                              2),
            "generate": {"samples": args.samples, "seconds": args.seconds,
                         "sampler_steps": args.sampler_steps, "guidance": model.guidance,
                         "sample_latents_s": round(latents[0], 3),
                         "sample_latents_cpu_s": round(latents[1], 3),
                         "decode_s": round(decode[0], 3), "decode_cpu_s": round(decode[1], 3),
                         "audio_s_per_s": round(audio / total, 2),
                         "audio_s_per_cpu_s": round(audio / total_cpu, 2)},
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
