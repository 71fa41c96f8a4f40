"""Sub-commands that plugins add to ``audio-core`` (the ``command`` kind).

A plugin registers a class; the CLI instantiates it (no arguments) only when its command
runs or shows its help, so ``audio-core --help`` lists plugin commands without importing
them::

    @hookimpl
    def audio_core_register_commands(registry):
        registry.register("frames", "audio_plugin_example.cli:FramesCommand",
                          description="frames the example encoder makes for N seconds")

``audio-core frames ...`` runs it; ``audio-core example.frames`` always does (use it when
two plugins, or a plugin and core, name a command alike).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

from audio_core.errors import AudioCoreError


@runtime_checkable
class Command(Protocol):
    """The contract of the ``command`` kind."""

    #: One line for ``audio-core --help``.
    description: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's options to its own ``parser``."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return the exit code. Raise ``AudioCoreError`` for a one-line error."""
        ...


def cli_names(specs: Iterable[Any], taken: set[str]) -> dict[str, list[str]]:
    """Full command name (``example.frames``) -> the names it answers to on the command line:
    the short name (``frames``) unless core or another plugin uses it, and the full one."""
    specs = list(specs)
    shorts = [s.name.split(".", 1)[1] for s in specs]
    names = {}
    for spec, short in zip(specs, shorts, strict=True):
        unique = short not in taken and shorts.count(short) == 1
        names[spec.name] = [short, spec.name] if unique else [spec.name]
    return names


def add_plugin_commands(subparsers: argparse._SubParsersAction, registry: Any,
                        wanted: str | None) -> None:
    """Add every plugin command to ``subparsers``; only the one named ``wanted`` is imported
    (for its options), the others are listed by their registered description."""
    specs = list(registry.specs("command"))
    every = cli_names(specs, set(subparsers.choices))  # core's commands only, so far
    for spec in specs:
        names = every[spec.name]
        help_text = f"{spec.description} (plugin '{spec.plugin}')".lstrip()
        if wanted not in names:
            subparsers.add_parser(names[0], aliases=names[1:], help=help_text, add_help=False)
            continue
        command = registry.build("command", spec.name, path=f"command {wanted}")
        parser = subparsers.add_parser(names[0], aliases=names[1:], help=help_text,
                                       description=command.description)
        command.add_arguments(parser)
        parser.set_defaults(handler=_runner(command, spec))


def _runner(command: Command, spec: Any):
    def handler(args: argparse.Namespace) -> int:
        try:
            return int(command.run(args) or 0)
        except (AudioCoreError, OSError, KeyboardInterrupt):
            raise
        except Exception as exc:  # the plugin's bug: one line naming the plugin
            raise AudioCoreError(
                f"command '{spec.name}' from {spec.origin} failed: "
                f"{type(exc).__name__}: {exc}") from exc
    return handler
