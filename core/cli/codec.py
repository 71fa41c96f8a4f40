"""``audio-core reconstruct``, ``encode`` and ``decode``: run a trained model over audio files
and token files (logic in :mod:`audio_core.inference.codec`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from audio_core.cli.numbers import non_negative, positive, positive_int
from audio_core.inference.placement import (
    add_placement_options,
    check_dtype,
    precision,
    resolve_device,
)

MODEL_HELP = "an export folder or a run folder (its newest checkpoint)"


def load_placed(path: str, args: argparse.Namespace, **kwargs: Any) -> Any:
    """``audio_core.load(path)`` on ``--device`` (``--device``/``--dtype`` checked before
    loading)."""
    from audio_core.models.loading import load

    device = resolve_device(args.device)
    check_dtype(args.dtype, device)
    return load(path, ema=args.ema, device=str(device), **kwargs)


def seed(text: str) -> int:
    """argparse type: a random seed, an integer in [0, 2**63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63), got {text!r}")
    return value


def port(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, got {text!r}")
    return value


def _bitrate_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--bandwidth", type=positive, metavar="KBPS",
                       help="target bitrate in kbps: uses floor(KBPS * 1000 / (frame_rate * "
                            "codebook_bits)) codebooks")
    group.add_argument("--n-quantizers", type=positive_int, metavar="N",
                       help="use the first N codebooks (default: all)")


def _common(p: argparse.ArgumentParser, *, context: bool = True) -> None:
    p.add_argument("--chunk-seconds", type=positive, default=10.0,
                   help="process long files in chunks of this length (default 10)")
    if context:
        p.add_argument("--context-seconds", type=non_negative, default=0.5,
                       help="audio/codes either side of a chunk computed and discarded "
                            "(default 0.5)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="run folders: --ema/--no-ema use the EMA/raw weights (default: EMA "
                        "when the checkpoint has them)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing OUT that is not an earlier output of this "
                        "command (it is moved aside to NAME.old-<time>, not deleted)")
    add_placement_options(p)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    r = subparsers.add_parser(
        "reconstruct", help="reconstruct an audio file with a trained model",
        description="Load MODEL (an export folder or a run folder), resample IN to the "
                    "model's rate and channels, reconstruct it in overlapping chunks and "
                    "write OUT, plus a report beside it with OUT's extension replaced: "
                    ".json (SI-SDR, mel distance, L1) and .png (original and reconstructed "
                    "spectrograms), e.g. out.wav -> out.json, out.png. None of them may be "
                    "IN. --bandwidth/--n-quantizers reconstruct a discrete codec through "
                    "fewer codebooks.")
    r.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    r.add_argument("input", metavar="IN")
    r.add_argument("output", metavar="OUT")
    _bitrate_options(r)
    _common(r, context=False)
    r.add_argument("--no-report", action="store_true", help="write only the audio")
    r.add_argument("--compare-untrained", action="store_true",
                   help="also score the same architecture freshly initialised (under "
                        "'baseline' in OUT.json): how much training helped")
    r.set_defaults(handler=run_reconstruct)

    e = subparsers.add_parser(
        "encode", help="encode an audio file to a token file",
        description="Encode IN (resampled to the model's rate and channels) with MODEL's "
                    "discrete codec and write the bit-packed codes and a header (model "
                    "fingerprint, rates, codebooks, length) to OUT (docs/tokens.md). OUT may "
                    "not be IN, carry an audio extension, or be an existing file other than "
                    "a token file.")
    e.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    e.add_argument("input", metavar="IN")
    e.add_argument("output", metavar="OUT.tokens")
    _bitrate_options(e)
    _common(e)
    e.add_argument("--latent", action="store_true",
                   help="write the continuous latent of an autoencoder (its encode: a VAE's "
                        "normalised posterior mean) to OUT as a safetensors latent file with "
                        "the model fingerprint (docs/cli.md), instead of a token file")
    e.set_defaults(handler=run_encode)

    d = subparsers.add_parser(
        "decode", help="decode a token file to audio",
        description="Decode IN.tokens with MODEL (the model that encoded it: a different "
                    "model or sample rate is an error) and write OUT at the model's rate "
                    "with the original length.")
    d.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    d.add_argument("input", metavar="IN.tokens")
    d.add_argument("output", metavar="OUT")
    d.add_argument("--n-quantizers", type=positive_int, metavar="N",
                   help="decode only the first N stored codebooks (default: all)")
    _common(d)
    d.add_argument("--latent", action="store_true",
                   help="IN is a latent file from `encode --latent` (decoded whole)")
    d.set_defaults(handler=run_decode)


def run_reconstruct(args: argparse.Namespace) -> int:
    from audio_core.inference.paths import claim_outputs, report_paths

    claim_outputs(report_paths(args.output, not args.no_report), {"IN": args.input},
                  overwrite=args.overwrite)
    model = load_placed(args.model, args)
    if args.bandwidth is None and args.n_quantizers is None:
        from audio_core.inference.reconstruct import reconstruct_file

        baseline = load_placed(args.model, args, untrained=True) \
            if args.compare_untrained else None
        with precision(model, args.dtype):
            metrics = reconstruct_file(model, args.input, args.output,
                                       report=not args.no_report,
                                       chunk_seconds=args.chunk_seconds, baseline=baseline)
    else:
        from audio_core.inference.codec import reconstruct_codec_file

        with precision(model, args.dtype):
            metrics = reconstruct_codec_file(model, args.input, args.output,
                                             bandwidth=args.bandwidth,
                                             n_quantizers=args.n_quantizers,
                                             report=not args.no_report,
                                             chunk_seconds=args.chunk_seconds)
    print(json.dumps(metrics, indent=2))
    return 0


def run_encode(args: argparse.Namespace) -> int:
    from audio_core.inference.codec import encode_file
    from audio_core.inference.paths import (
        check_outputs,
        check_token_output,
        claim_outputs,
        is_token_file,
    )
    from audio_core.latents.files import is_latent_file

    check_outputs({"OUT": args.output}, {"IN": args.input})
    if not args.latent:
        check_token_output(args.output, overwrite=args.overwrite)
    claim_outputs({"OUT": args.output}, {"IN": args.input}, overwrite=args.overwrite,
                  owned=is_latent_file if args.latent else is_token_file)
    model = load_placed(args.model, args)
    if args.latent:
        with precision(model, args.dtype):
            return _encode_latent(model, args)
    with precision(model, args.dtype):
        header = encode_file(model, args.input, args.output, bandwidth=args.bandwidth,
                             n_quantizers=args.n_quantizers, chunk_seconds=args.chunk_seconds,
                             context_seconds=args.context_seconds)
    print(json.dumps({"tokens": args.output, "fingerprint": header.model_fingerprint,
                      "codebooks": header.num_codebooks, "frames": header.num_frames,
                      "kbps": header.kbps, "seconds": header.length / header.sample_rate},
                     indent=2))
    return 0


def run_decode(args: argparse.Namespace) -> int:
    from audio_core.inference.codec import decode_file
    from audio_core.inference.paths import claim_outputs

    claim_outputs({"OUT": args.output}, {"IN": args.input}, overwrite=args.overwrite)
    model = load_placed(args.model, args)
    if args.latent:
        from audio_core.latents.files import decode_latent_file

        with precision(model, args.dtype):
            info = decode_latent_file(model, args.input, args.output)
        print(json.dumps(info, indent=2))
        return 0
    with precision(model, args.dtype):
        info = decode_file(model, args.input, args.output, n_quantizers=args.n_quantizers,
                           chunk_seconds=args.chunk_seconds,
                           context_seconds=args.context_seconds)
    print(json.dumps(info, indent=2))
    return 0


def _encode_latent(model, args: argparse.Namespace) -> int:
    from audio_core.errors import AudioCoreError
    from audio_core.latents.files import encode_latent_file

    if args.bandwidth is not None or args.n_quantizers is not None:
        raise AudioCoreError("--latent writes the continuous latent: --bandwidth and "
                             "--n-quantizers do not apply")
    header = encode_latent_file(model, args.input, args.output,
                                chunk_seconds=args.chunk_seconds,
                                context_seconds=args.context_seconds)
    print(json.dumps({"latent": args.output, **{k: header[k] for k in (
        "model_fingerprint", "latent_dim", "frame_rate", "hop_length", "sample_rate")},
        "frames": -(-header["length"] // header["hop_length"]),
        "seconds": header["length"] / header["sample_rate"]}, indent=2))
    return 0
