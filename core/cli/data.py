"""``audio-core data``: ``inspect`` a folder, ``pack`` shards, write a ``manifest``, ``verify``
shards."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from audio_core.cli import numbers
from audio_core.cli.codec import seed
from audio_core.cli.output import print_json, print_table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="inspect, pack and index audio data",
                              description="Inspect audio folders, pack them into shards, "
                                          "write manifests, verify shards.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    ins = sub.add_parser(
        "inspect", help="summarise an audio folder or file",
        description="Scan PATH (a file or a folder, recursively) and report files, total "
                    "duration, sample rates, channel counts and bad files with reasons. "
                    "Exit code 0 even with bad files (they are reported).")
    ins.add_argument("path", metavar="PATH")
    ins.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ins.add_argument("--no-verify", action="store_true",
                     help="read headers only (faster; does not find NaN/corrupt samples)")
    ins.add_argument("--files", action="store_true", help="also list every file")
    ins.set_defaults(handler=run_inspect)
    _add_pack(sub)
    _add_manifest(sub)
    ver = sub.add_parser(
        "verify", help="check a packed dataset's shards against its index.json",
        description="Check that every shard listed in OUT/index.json exists and has the "
                    "recorded size and sha256. Exit code 1 names the bad shards.")
    ver.add_argument("out", metavar="OUT")
    ver.set_defaults(handler=run_verify)


def _cpus() -> int:
    """CPUs this process may use (its affinity mask on Linux, e.g. under a scheduler)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def _workers(text: str) -> int:
    """0 or 1: in-process; at most 8 processes per CPU this process may use."""
    from audio_core.cli.numbers import bounded_int

    return bounded_int(text, high=max(64, 8 * _cpus()))


def _add_pack(sub: argparse._SubParsersAction) -> None:
    pk = sub.add_parser(
        "pack", help="write tar shards (WebDataset layout) + index.json",
        description="Pack SRC (a folder, a caption list .csv/.tsv/.jsonl or a manifest "
                    ".jsonl[.gz]) into tar shards in OUT: KEY.flac|wav + KEY.json per "
                    "sample, a member index per shard, index.json with sha256 per shard and "
                    "bad_files.json. Re-running the same command resumes a killed run.")
    pk.add_argument("src", metavar="SRC")
    pk.add_argument("out", metavar="OUT")
    pk.add_argument("--format", choices=("flac", "wav"), default="flac",
                    help="audio member format (default flac)")
    pk.add_argument("--shard-size", type=numbers.size, default="512MB",
                    help="target bytes per shard: 512MB, 1GB, 100KiB ... (default 512MB)")
    pk.add_argument("--sample-rate", type=numbers.sample_rate, default=None,
                    help="resample every sample to this rate (default: keep each file's)")
    pk.add_argument("--channels", type=numbers.channels, default=None,
                    help="mix down to mono (1) or repeat mono (2) (default: keep)")
    pk.add_argument("--buckets", type=numbers.seconds_list, default=None, metavar="S1,S2,...",
                    help="duration bucket edges in seconds, e.g. 2,5,10: each shard holds "
                         "one bucket's samples")
    pk.add_argument("--labels", choices=("folders",), default=None,
                    help="'folders': label files by their top-level sub-folder (classes)")
    pk.add_argument("--seed", type=seed, default=0,
                    help="seed of the sample order across shards (default 0)")
    pk.add_argument("--no-shuffle", action="store_true",
                    help="keep the source order instead of shuffling")
    pk.add_argument("--workers", type=_workers, default=min(4, _cpus()),
                    help="encoding processes (default min(4, CPUs); 0 or 1: in-process)")
    pk.add_argument("--overwrite", action="store_true",
                    help="move an OUT packed differently aside (OUT.replaced-TIME) and pack")
    pk.add_argument("--no-progress", action="store_true", help="no progress bar")
    pk.set_defaults(handler=run_pack)


def _add_manifest(sub: argparse._SubParsersAction) -> None:
    mf = sub.add_parser(
        "manifest", help="write a JSONL(.gz) manifest of a folder",
        description="Read the headers of every audio file under SRC (recursively, in "
                    "parallel) and write OUT (.jsonl or .jsonl.gz): path, duration, "
                    "sample_rate, channels, frames per file, for the core.manifest dataset. "
                    "Bad files are listed and left out.")
    mf.add_argument("src", metavar="SRC")
    mf.add_argument("out", metavar="OUT")
    mf.add_argument("--labels", choices=("folders",), default=None,
                    help="'folders': label = the file's top-level sub-folder name")
    mf.add_argument("--absolute", action="store_true",
                    help="absolute paths (default: relative to OUT's folder)")
    mf.add_argument("--verify", action="store_true",
                    help="also decode every sample (finds NaN/Inf and truncated files)")
    mf.add_argument("--workers", type=_workers, default=None,
                    help="header-reading threads (default min(8, CPUs))")
    mf.add_argument("--no-progress", action="store_true", help="no progress bar")
    mf.set_defaults(handler=run_manifest)


def _print_bad(bad: list[dict], where: Path | None = None) -> None:
    if bad:
        listed = f"; listed in {where}" if where else ""
        print_table(f"bad files ({len(bad)}, skipped{listed})", ("path", "reason"),
                    [(b["path"], b["reason"]) for b in bad])


def run_pack(args: argparse.Namespace) -> int:
    import attrs

    from audio_core.data.pack import BAD_FILES, PackOptions, pack, parse_size

    opts = PackOptions(format=args.format, shard_size=parse_size(args.shard_size),
                       sample_rate=args.sample_rate, channels=args.channels,
                       buckets=tuple(args.buckets or ()),
                       labels=args.labels, seed=None if args.no_shuffle else args.seed)
    result = pack(args.src, args.out, opts, workers=args.workers, overwrite=args.overwrite,
                  progress=not args.no_progress)
    index = result.index
    if result.already_done:
        print(f"{result.out} is already packed from this source with these options "
              f"({index['samples']} samples, {len(index['shards'])} shard(s)); nothing to do")
        return 0
    resumed = f" ({result.resumed_shards} shard(s) from an earlier run)" \
        if result.resumed_shards else ""
    print(f"packed {index['samples']} samples ({index['seconds']:.1f} s) into "
          f"{len(index['shards'])} shard(s) in {result.out}{resumed}")
    _print_bad([attrs.asdict(b) for b in result.bad_files], result.out / BAD_FILES)
    return 0


def run_manifest(args: argparse.Namespace) -> int:
    from audio_core.data.manifest import folder_manifest

    out, rows, bad = folder_manifest(args.src, args.out, labels=args.labels,
                                     absolute=args.absolute, verify=args.verify,
                                     workers=args.workers or None,
                                     progress=not args.no_progress)
    print(f"wrote {rows} entries to {out}")
    _print_bad(bad)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from audio_core.data.pack import verify_shards

    index, problems = verify_shards(args.out)
    if problems:
        print_table(f"bad shards ({len(problems)} of {len(index['shards'])})", ("problem",),
                    [(p,) for p in problems])
        return 1
    print(f"ok: {len(index['shards'])} shard(s), {index['samples']} samples, "
          f"{index['seconds']:.1f} s")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from audio_core.data.inspect import inspect_path

    report = inspect_path(args.path, verify=not args.no_verify)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(report.summary())
    root = Path(args.path)
    shown = (lambda p: os.path.relpath(p, root)) if root.is_dir() else str
    if args.files:
        print_table("files", ("path", "seconds", "rate", "channels", "format"),
                    [(shown(f.path), f"{f.duration:.2f}", f.sample_rate, f.channels, f.format)
                     for f in report.files])
    if report.bad_files:
        print_table(f"bad files ({len(report.bad_files)})", ("path", "reason"),
                    [(shown(b.path), b.reason) for b in report.bad_files])
    return 0
