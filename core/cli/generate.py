"""``audio-core generate``: new audio from a generative model (a stage-2 export)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    g = subparsers.add_parser(
        "generate", help="generate audio with a generative model",
        description="Sample K waveforms from MODEL (an export or run folder of a generator, "
                    "e.g. core.latent_diffusion): a two-stage model samples latents, then "
                    "decodes them with the stage-1 model named in its export. Writes OUT "
                    "(K=1) or OUT's stem with _0, _1, ... (K>1), plus OUT.json with every "
                    "setting. The same seed gives the same audio.")
    g.add_argument("model", metavar="MODEL", help="an export folder or a run folder")
    cond = g.add_mutually_exclusive_group()
    cond.add_argument("--text", metavar="T", help="caption for a text-conditioned model")
    cond.add_argument("--class", dest="label", metavar="C",
                      help="class name or index for a class-conditioned model")
    g.add_argument("--steps", type=int, default=None,
                   help="sampler steps (default: the export's sampler setting)")
    g.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale; 1 = the conditional model alone "
                        "(default: the export's setting)")
    g.add_argument("--decode-steps", type=int, default=None, metavar="N",
                   help="sampler steps of a stage-1 model that samples when decoding (a "
                        "diffusion autoencoder); default: the stage-1 model's setting")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    g.add_argument("--seconds", type=float, default=None,
                   help="length of each sample (default: the model's training length)")
    g.add_argument("--num-samples", type=int, default=1, metavar="K",
                   help="how many samples (default 1)")
    g.add_argument("-o", "--output", required=True, metavar="OUT", help="output audio file")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="run folders: EMA or raw weights (default: EMA when present)")
    g.set_defaults(handler=run_generate)


def output_paths(output: str, count: int) -> list[Path]:
    out = Path(output)
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(count)]


def run_generate(args: argparse.Namespace) -> int:
    from audio_core.errors import AudioCoreError

    if args.num_samples < 1:
        raise AudioCoreError(f"--num-samples must be >= 1, got {args.num_samples}")
    if args.steps is not None and args.steps < 1:
        raise AudioCoreError(f"--steps must be >= 1, got {args.steps}")
    if args.seconds is not None and args.seconds <= 0:
        raise AudioCoreError(f"--seconds must be > 0, got {args.seconds}")
    if args.decode_steps is not None and args.decode_steps < 1:
        raise AudioCoreError(f"--decode-steps must be >= 1, got {args.decode_steps}")
    if args.guidance is not None and args.guidance < 0:
        raise AudioCoreError(f"--guidance must be >= 0, got {args.guidance}")
    paths = output_paths(args.output, args.num_samples)
    report = Path(str(paths[0].with_suffix("")) + ".json") if args.num_samples == 1 \
        else Path(args.output).with_suffix(".json")
    existing = [str(p) for p in (*paths, report) if p.exists()]
    if existing and not args.overwrite:
        raise AudioCoreError(f"{', '.join(existing)} already exist(s); choose another -o or "
                             f"pass --overwrite")

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from audio_core.audio.io import save_audio
    from audio_core.engine.export import load
    from audio_core.models.contracts import Generator, capabilities

    model = load(args.model, ema=args.ema)
    if not isinstance(model, Generator):
        raise AudioCoreError(f"{args.model} holds a {type(model).__name__} (contracts: "
                             f"{', '.join(capabilities(model)) or 'none'}), not a generator")
    keys = tuple(model.condition_keys)
    for flag, value, key in (("--text", args.text, "text"), ("--class", args.label, "label")):
        if value is not None and keys != (key,):
            reads = f"reads {keys[0]!r}" if keys else "takes no conditioning"
            raise AudioCoreError(f"{flag} does not apply: this model's conditioner {reads}")
    conditioning = args.text if args.text is not None else args.label
    if args.label is not None and args.label.lstrip("-").isdigit():
        conditioning = int(args.label)
    options = {}
    if args.decode_steps is not None:
        try:
            model.check_decode_steps(args.decode_steps)
        except ValueError as exc:
            raise AudioCoreError(f"--decode-steps: {exc}") from exc
        options["decode_steps"] = args.decode_steps
    steps = args.steps or model.steps
    with logging_redirect_tqdm(), \
            tqdm(total=steps, desc="generate", unit="step", disable=steps is None) as bar:
        audio = model.generate(conditioning, num_samples=args.num_samples, steps=args.steps,
                               guidance=args.guidance, seed=args.seed, seconds=args.seconds,
                               progress=lambda i, total: bar.update(1), **options)
    for path, clip in zip(paths, audio, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        save_audio(path, clip.clamp(-1, 1).cpu(), model.sample_rate)
    guidance = args.guidance if args.guidance is not None else model.guidance
    decode_steps = args.decode_steps if args.decode_steps is not None else model.decode_steps
    settings = {"model": args.model, "text": args.text, "class": args.label, "steps": steps,
                "decode_steps": decode_steps, "guidance": guidance, "seed": args.seed,
                "seconds": audio.shape[-1] / model.sample_rate,
                "num_samples": args.num_samples, "sample_rate": model.sample_rate,
                "outputs": [str(p) for p in paths]}
    report.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    print(json.dumps(settings, indent=2))
    return 0
