"""``audio-core eval``: score a model on audio files (logic in :mod:`audio_core.evaluation`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audio_core.cli.codec import MODEL_HELP, non_negative, positive, positive_int, seed


def _param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import yaml

    return key, yaml.safe_load(value)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="score a model on audio files (metrics, Opus baseline, FAD)",
        description="Reconstruct every audio file under DATA with MODEL (a codec once per "
                    "--bandwidth) and score it: multi-scale mel distance, multi-resolution "
                    "STFT distance, SI-SDR; PESQ-wb, STOI and DNSMOS for speech; codebook "
                    "usage and real bitrate for codecs; real-time factor; Fréchet audio "
                    "distance. Prints a table of means and writes OUT/results.json, "
                    "OUT/files.csv, OUT/metrics_vs_bitrate.png and OUT/worst_files.png. For "
                    "a generator, DATA is the reference folder: it generates --num-samples "
                    "clips into OUT/generated/ and reports FAD and FAD-inf.")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("data", metavar="DATA", help="an audio file or a folder (recursive)")
    p.add_argument("--bandwidth", type=positive, nargs="+", metavar="KBPS",
                   help="codec bitrates to evaluate, e.g. --bandwidth 1.5 3 6 (default: all "
                        "codebooks)")
    p.add_argument("--baseline", choices=["opus", "auto"],
                   help="opus: also code every file with Opus at the same bitrates (needs "
                        "opusenc and opusdec from opus-tools); auto: Opus when installed")
    p.add_argument("--out", default="eval", metavar="DIR",
                   help="output folder (default ./eval)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files in DIR that an earlier eval did not write (moved "
                        "aside to NAME.old-<time>)")
    p.add_argument("--speech", choices=["auto", "yes", "no"], default="auto",
                   help="score PESQ/STOI/DNSMOS: auto (files under a 'speech' folder), yes, "
                        "no (default auto)")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (the slowest)")
    p.add_argument("--embedding", default="core.logmel", metavar="NAME",
                   help="FAD embedding component (default core.logmel; see "
                        "`audio-core components --kind embedding`)")
    p.add_argument("--embedding-param", type=_param, action="append", default=[],
                   metavar="KEY=VALUE", help="a parameter of the embedding, e.g. "
                                             "path=/models/vggish.pt (repeatable)")
    p.add_argument("--no-fad", action="store_true", help="skip the Fréchet audio distance")
    p.add_argument("--limit", type=positive_int, metavar="N", help="only the first N files")
    p.add_argument("--chunk-seconds", type=positive, default=10.0,
                   help="process long files in chunks of this length (default 10)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="run folders: EMA or raw weights (default: EMA when present)")
    gen = p.add_argument_group("generators")
    gen.add_argument("--num-samples", type=positive_int, default=16, metavar="K",
                     help="clips to generate (default 16)")
    gen.add_argument("--seconds", type=positive, help="length of each generated clip")
    gen.add_argument("--steps", type=positive_int, help="sampler steps")
    gen.add_argument("--guidance", type=non_negative, help="classifier-free guidance scale")
    gen.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    gen.add_argument("--text", metavar="T", help="caption for a text-conditioned model")
    gen.add_argument("--class", dest="label", metavar="C", help="class for a class model")
    p.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from audio_core.contracts.models import Generator, Reconstructor, is_codec
    from audio_core.evaluation import report
    from audio_core.evaluation.evaluate import (
        claim_eval_folder,
        evaluate_generator,
        evaluate_reconstruction,
    )
    from audio_core.metrics.embeddings import build_embedding
    from audio_core.models.loading import load

    console = Console(stderr=True)
    out = Path(args.out)
    claim_eval_folder(out, {"MODEL": args.model, "DATA": args.data}, overwrite=args.overwrite)
    model = load(args.model, ema=args.ema)
    embedding = None if args.no_fad else build_embedding(args.embedding,
                                                         dict(args.embedding_param))
    if isinstance(model, Generator) and not isinstance(model, Reconstructor) \
            and not is_codec(model):
        if embedding is None:
            from audio_core.errors import AudioCoreError

            raise AudioCoreError("a generator is scored by FAD; drop --no-fad")
        from audio_core.cli.generate import named_conditioning

        # --text/--class: the conditioners reading text/label, as in `audio-core generate`
        conditioning = named_conditioning(model, [], args.text, args.label) or None
        payload = evaluate_generator(model, args.data, out, embedding=embedding,
                                     num_samples=args.num_samples, seconds=args.seconds,
                                     steps=args.steps, guidance=args.guidance, seed=args.seed,
                                     conditioning=conditioning, limit=args.limit,
                                     model_name=args.model)
        print(json.dumps(payload, indent=2))
        return 0
    result, written = evaluate_reconstruction(
        model, args.data, out, bandwidths=args.bandwidth, baseline=args.baseline,
        speech=args.speech, embedding=embedding, dnsmos=not args.no_dnsmos, limit=args.limit,
        chunk_seconds=args.chunk_seconds, model_name=args.model,
        progress=lambda line: console.log(line, markup=False, highlight=False))
    report.print_table(result, Console(width=max(Console().width, 150)))
    for what, path in written.items():
        print(f"{what}: {path}")
    return 0
