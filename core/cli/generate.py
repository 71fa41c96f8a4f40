"""``audio-core generate``: new audio from a generative model (a stage-2 export)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from audio_core.cli.codec import load_placed, non_negative, positive, positive_int, seed
from audio_core.inference.limits import LIMITS, check_generation
from audio_core.inference.placement import add_placement_options, precision

if TYPE_CHECKING:
    from audio_core.contracts.models import Generator


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    g = subparsers.add_parser(
        "generate", help="generate audio with a generative model",
        description="Sample K waveforms from MODEL (an export or run folder of a generator, "
                    "e.g. core.latent_diffusion): a two-stage model samples latents, then "
                    "decodes them with the stage-1 model named in its export. Writes OUT "
                    "(K=1) or OUT's stem with _0, _1, ... (K>1), plus OUT.json with every "
                    "setting. The same seed gives the same audio.")
    g.add_argument("model", metavar="MODEL", help="an export folder or a run folder")
    g.add_argument("--text", metavar="T", help="caption for a text-conditioned model (the "
                   "conditioner reading the batch key text)")
    g.add_argument("--class", dest="label", metavar="C",
                   help="class name or index for a class-conditioned model (the conditioner "
                        "reading the batch key label)")
    g.add_argument("--cond", action="append", default=[], metavar="NAME=VALUE",
                   help="the value of the model's conditioner NAME (repeatable; names as in "
                        "its model.conditioners): a text, a class name or index, or timing "
                        "as seconds_total (e.g. 10) or seconds_start=S,seconds_total=T; a "
                        "conditioner not given gets its null embedding. --text/--class set "
                        "the conditioner reading the batch key text/label")
    g.add_argument("--steps", type=positive_int, default=None,
                   help="sampler steps (default: the export's sampler setting; at most "
                        f"{LIMITS['--steps']} without --no-limits)")
    g.add_argument("--guidance", type=non_negative, default=None,
                   help="classifier-free guidance scale; 1 = the conditional model alone "
                        "(default: the export's setting)")
    g.add_argument("--decode-steps", type=positive_int, default=None, metavar="N",
                   help="sampler steps of a stage-1 model that samples when decoding (a "
                        "diffusion autoencoder); default: the stage-1 model's setting")
    g.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    g.add_argument("--seconds", type=positive, default=None,
                   help="length of each sample (default: the model's training length; at "
                        f"most {LIMITS['--seconds']:g} without --no-limits)")
    g.add_argument("--num-samples", type=positive_int, default=1, metavar="K",
                   help=f"how many samples (default 1; at most {LIMITS['--num-samples']} "
                        f"without --no-limits)")
    g.add_argument("--no-limits", action="store_true",
                   help="lift the caps on --num-samples, --steps and --seconds (the memory "
                        "budget, half this machine's memory, still applies)")
    g.add_argument("-o", "--output", required=True, metavar="OUT", help="output audio file")
    g.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (moved aside to NAME.old-<time>)")
    add_placement_options(g)
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

    check_generation(num_samples=args.num_samples, seconds=args.seconds, steps=args.steps,
                     guidance=args.guidance, unlimited=args.no_limits)
    paths = output_paths(args.output, args.num_samples)
    report = Path(str(paths[0].with_suffix("")) + ".json") if args.num_samples == 1 \
        else Path(args.output).with_suffix(".json")
    from audio_core.inference.paths import claim_outputs

    outputs = {f"OUT{'' if len(paths) == 1 else f' sample {i}'}": p
               for i, p in enumerate(paths)}
    claim_outputs({**outputs, "OUT's .json report": report}, {"MODEL": args.model},
                  overwrite=args.overwrite)

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from audio_core.audio.io import save_audio
    from audio_core.contracts.models import Generator, capabilities
    from audio_core.files import write_text

    model = load_placed(args.model, args)
    if not isinstance(model, Generator):
        raise AudioCoreError(f"{args.model} holds a {type(model).__name__} (contracts: "
                             f"{', '.join(capabilities(model)) or 'none'}), not a generator")
    conditioning = named_conditioning(model, args.cond, args.text, args.label)
    check_generation(num_samples=args.num_samples, steps=args.steps, guidance=args.guidance,
                     seconds=args.seconds if args.seconds is not None else getattr(
                         model, "seconds", None), sample_rate=model.sample_rate,
                     channels=model.channels, unlimited=args.no_limits)
    options = {}
    if args.decode_steps is not None:
        try:
            model.check_decode_steps(args.decode_steps)
        except ValueError as exc:
            raise AudioCoreError(f"--decode-steps: {exc}") from exc
        options["decode_steps"] = args.decode_steps
    steps = args.steps or model.steps
    with logging_redirect_tqdm(), precision(model, args.dtype), \
            tqdm(total=steps, desc="generate", unit="step", disable=steps is None) as bar:
        def advance(step: int, total: int) -> None:
            bar.update(1)

        audio = model.generate(conditioning, num_samples=args.num_samples, steps=args.steps,
                               guidance=args.guidance, seed=args.seed, seconds=args.seconds,
                               progress=advance, **options)
    for path, clip in zip(paths, audio, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        save_audio(path, clip.float().clamp(-1, 1).cpu(), model.sample_rate)
    guidance = args.guidance if args.guidance is not None else model.guidance
    decode_steps = args.decode_steps if args.decode_steps is not None else model.decode_steps
    settings = {"model": args.model, "text": args.text, "class": args.label,
                "cond": conditioning, "steps": steps,
                "decode_steps": decode_steps, "guidance": guidance, "seed": args.seed,
                "seconds": audio.shape[-1] / model.sample_rate,
                "num_samples": args.num_samples, "sample_rate": model.sample_rate,
                "outputs": [str(p) for p in paths]}
    write_text(report, json.dumps(settings, indent=2))
    print(json.dumps(settings, indent=2))
    return 0


def named_conditioning(model: Generator, pairs: list[str], text: str | None,
                       label: str | None) -> dict[str, str]:
    """``--cond NAME=VALUE`` pairs plus ``--text``/``--class`` (the conditioner reading
    batch key ``text``/``label``) -> ``{NAME: VALUE}`` for ``generate``; one-line errors
    naming the flag and the model's conditioners."""
    from audio_core.errors import AudioCoreError

    conditions = model.conditions
    listed = ", ".join(f"{n} ({'/'.join(k) or 'no key'})" for n, k in conditions.items()) \
        or "none"
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in conditions:
            what = f"unknown conditioner '{name}'" if sep else "not NAME=VALUE"
            raise AudioCoreError(f"--cond {pair}: {what}; this model's conditioners: {listed}")
        if name in out:
            raise AudioCoreError(f"--cond {pair}: conditioner '{name}' given twice")
        out[name] = value
    for flag, value, key in (("--text", text, "text"), ("--class", label, "label")):
        if value is None:
            continue
        name = next((n for n, k in conditions.items() if k == (key,)), None)
        if name is None:
            raise AudioCoreError(f"{flag} does not apply: no conditioner of this model reads "
                                 f"'{key}' (its conditioners: {listed})")
        if name in out:
            raise AudioCoreError(f"{flag} and --cond {name}=... set the same conditioner")
        out[name] = value
    return out
