"""``audio-core launch``: run a launcher so that SIGTERM ends in a complete checkpoint."""

from __future__ import annotations

import argparse


def _grace(text: str) -> float:
    from audio_core.cli.numbers import seconds

    return seconds(text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "launch", help="run a training launcher that stops safely on SIGTERM",
        description="Run COMMAND (deepspeed, torchrun, python or audio-core train with its "
                    "arguments) and wait for it. SIGTERM, SIGINT or SIGHUP to this process is "
                    "sent straight to the training processes (not to the launcher, which "
                    "would kill them 30 s later): each rank saves a checkpoint at its next "
                    "step boundary, and this command exits only once the launcher and every "
                    "training process have exited. Exit status: 0 finished, 75 stopped by a "
                    "signal after saving (resumable: --resume RUN_DIR or --resume auto), "
                    "otherwise the launcher's status.",
        usage="audio-core launch [--grace SECONDS] [--] COMMAND [ARG ...]")
    p.add_argument("--grace", type=_grace, default=None, metavar="SECONDS",
                   help="after a stop signal, kill training processes that have not exited "
                        "within SECONDS (default: wait as long as the save takes)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                   help="the launcher command line")
    p.set_defaults(handler=run_launch, launch_parser=p)


def run_launch(args: argparse.Namespace) -> int:
    from audio_core.launch.supervisor import Supervisor

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        args.launch_parser.error("give the command to run, e.g. audio-core launch -- "
                                 "deepspeed --num_gpus 8 --module audio_core train CONFIG")
    return Supervisor(command, grace=args.grace).run()
