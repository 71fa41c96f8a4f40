"""Every CLI command is documented in docs/cli.md."""

from pathlib import Path

import pytest

from audio_core.cli import build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def leaf_commands(parser, prefix=()):
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    if not subs:
        yield prefix
    for action in subs:
        for name, sub in action.choices.items():
            yield from leaf_commands(sub, (*prefix, name))


@pytest.mark.parametrize("command", list(leaf_commands(build_parser())), ids=" ".join)
def test_command_is_documented(command):
    assert f"## `audio-core {' '.join(command)}" in DOC.read_text()
