"""``audio-core data inspect PATH``: files, durations, rates and bad files of a folder."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from audio_core.cli.output import print_json, print_table


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="inspect audio data",
                              description="Inspect audio data folders.")
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
