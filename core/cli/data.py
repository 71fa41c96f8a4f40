"""``audio-core data inspect PATH``: files, durations, rates and bad files of a folder."""

from __future__ import annotations

import argparse

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
    data = report.to_dict()
    if args.json:
        print_json(data)
        return 0
    summary = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
    print_table(f"audio data: {args.path}", ("", "value"), sorted(summary.items()))
    for key, value in data.items():
        if isinstance(value, dict):
            print_table(key.replace("_", " "), ("value", "files"), sorted(value.items()))
    if args.files:
        files = data.get("files", [])
        if files:
            columns = list(files[0])
            print_table("files", columns, [[f[c] for c in columns] for f in files])
    bad = data.get("bad_files", [])
    if bad:
        print_table(f"bad files ({len(bad)})", ("path", "reason"),
                    [(b["path"], b["reason"]) for b in bad])
    return 0
