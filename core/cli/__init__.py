"""The ``audio-core`` command. Each sub-command lives in its own module with
``add_parser(subparsers)`` and ``run(args) -> int``; heavy imports happen inside ``run``.
Plugins add sub-commands as components of the ``command`` kind
(:mod:`audio_core.cli.commands`); plugins are only loaded when the command line names no
built-in command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from audio_core.cli.numbers import non_negative_int
from audio_core.engine.allocator import tune_cpu_allocator
from audio_core.errors import AudioCoreError
from audio_core.version import __version__

#: Modules that contribute sub-commands, in help order.
COMMAND_MODULES = (
    "audio_core.cli.plugins",
    "audio_core.cli.config",
    "audio_core.cli.data",
    "audio_core.cli.train",
    "audio_core.cli.imports",
    "audio_core.cli.launch",
    "audio_core.cli.codec",
    "audio_core.cli.latents",
    "audio_core.cli.generate",
    "audio_core.cli.eval",
    "audio_core.cli.ui",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``audio-core CMD: error: argument --x: ...``), exit 2;
    the usage itself is what ``--help`` prints. Sub-command parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} "
                     f"(see '{self.prog} --help')\n")


def _command_token(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (``None``: none, e.g. ``--help``)."""
    tokens = iter(argv)
    for token in tokens:
        if token in ("--local_rank", "--local-rank"):
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming no built-in command, plugin commands are added."""
    parser = _Parser(
        prog="audio-core",
        description="Train and run neural audio autoencoders, tokenizers, codecs and "
                    "latent diffusion models.",
        epilog="Run 'audio-core COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"audio-core {__version__}")
    # `deepspeed --module audio_core ...` passes --local_rank=N before the sub-command.
    parser.add_argument("--local_rank", "--local-rank", type=non_negative_int, default=None,
                        help=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    wanted = _command_token(argv or ())
    if argv is not None and wanted not in subparsers.choices:
        from audio_core.cli.commands import add_plugin_commands
        from audio_core.plugins import get_plugin_manager

        add_plugin_commands(subparsers, get_plugin_manager().registry, wanted)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``audio-core`` and ``python -m audio_core``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
    except AudioCoreError as exc:  # a plugin command that cannot be built
        print(f"audio-core: error: {exc}", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    tune_cpu_allocator()
    from audio_core.network import downloads_allowed

    if not downloads_allowed():  # no Hugging Face library contacts the Hub (unless the
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # user says otherwise)
    try:
        return int(args.handler(args) or 0)
    except AudioCoreError as exc:
        print(f"audio-core: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and friends: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a full disk, no permission, a file where a folder belongs
        from audio_core.files import cause

        where = f"{exc.filename}: " if exc.filename else ""
        print(f"audio-core: error: {where}{cause(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.split(".")[0] != "yaml":
            raise
        # a YAML tag (!!python/...) or syntax error in an override or a file: where and
        # what, never the text (a file may hold secrets)
        from audio_core.errors import yaml_problem

        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        name = getattr(mark, "name", "") or ""
        where = "" if name.startswith("<") else f"{name}: "
        print(f"audio-core: error: {where}not valid YAML at {yaml_problem(exc)}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("audio-core: interrupted", file=sys.stderr)
        return 130
