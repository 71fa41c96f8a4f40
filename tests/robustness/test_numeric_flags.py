"""Every numeric flag of every sub-command, found by walking the parser of
``audio_core.cli`` (so a new flag is covered without touching this test), refuses 0, -1,
NaN, +-inf and 1e30 with exit status 2 and one line on stderr naming the flag, never a
traceback. A flag is numeric when its argparse type turns a number into an int or float
(or a tuple of them, e.g. ``data pack --buckets``)."""

from __future__ import annotations

import argparse

import pytest

from audio_core.cli import build_parser, main
from audio_core.cli.numbers import MAX_MAGNITUDE

BAD = ["0", "-1", "nan", "inf", "-inf", "1e30"]
#: Probes that a numeric type accepts (one of them at least).
PROBES = ("1", "2", "0.5", "100", "1000000", "512MB")


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


def _is_number(value) -> bool:
    if isinstance(value, tuple):
        return bool(value) and all(_is_number(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric(action: argparse.Action) -> bool:
    if not action.option_strings or action.type is None:
        return False
    for probe in PROBES:
        try:
            if _is_number(action.type(probe)):
                return True
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
    return False


def _argv(path: tuple[str, ...], parser: argparse.ArgumentParser, flag: str,
          value: str) -> list[str]:
    """A command line that is valid except for ``flag value``."""
    before, after = [], []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            after.append("plugins")  # the top-level parser: any sub-command
        elif not action.option_strings:
            n = {None: 1, "+": 1, "?": 0, "*": 0, argparse.REMAINDER: 1}.get(action.nargs,
                                                                               action.nargs)
            after += ["x"] * n
        elif action.required:
            before += [action.option_strings[0], "x"]
    return [*path, *before, f"{flag}={value}", *after]


FLAGS = sorted((path, action.option_strings[-1])
               for path, parser in _walk(build_parser())
               for action in parser._actions if _numeric(action))


def test_the_walk_finds_the_flags_of_every_command():
    found = {(" ".join(path), flag) for path, flag in FLAGS}
    expected = {("generate", "--steps"), ("generate", "--seconds"), ("generate", "--seed"),
                ("eval", "--guidance"), ("latents", "--shard-mb"),
                ("encode", "--context-seconds"), ("reconstruct", "--chunk-seconds"),
                ("data pack", "--shard-size"), ("data pack", "--workers"),
                ("data pack", "--sample-rate"), ("data pack", "--channels"),
                ("data pack", "--buckets"), ("data manifest", "--workers"),
                ("config validate", "--world-size"), ("launch", "--grace"),
                ("ui", "--port"), ("train", "--local-rank")}
    assert expected <= found, expected - found
    assert len(found) >= 40


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("path, flag", FLAGS, ids=[f"{' '.join(p) or '-'} {f}"
                                                    for p, f in FLAGS])
def test_every_numeric_flag_refuses_bad_numbers(path, flag, value, capsys):
    parser = dict(_walk(build_parser()))[path]
    argv = _argv(path, parser, flag, value)
    try:
        build_parser().parse_args(argv)
    except SystemExit as exit_info:
        assert exit_info.code == 2, (argv, exit_info.code)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.endswith("\n"), err  # one line
        assert f"argument {flag}" in err or any(
            f"argument {o}" in err for o in _options(parser, flag)), err
        assert "Traceback" not in err
        return
    # parsed: only 0 may be a legal value (a seed, a rank, a context, in-process workers)
    assert value == "0", f"{' '.join(argv)} was accepted"


def _options(parser: argparse.ArgumentParser, flag: str) -> list[str]:
    return next(a.option_strings for a in parser._actions if flag in a.option_strings)


def test_a_legal_zero_runs_without_a_traceback(tmp_path, capsys):
    """0 is legal for some flags; a command given one runs (here: fails on its missing
    model or data) with a one-line error, not a traceback."""
    for argv in (["generate", str(tmp_path / "no-model"), "--seed", "0", "-o",
                  str(tmp_path / "g.wav")],
                 ["encode", str(tmp_path / "no-model"), "a.wav", "b.tokens",
                  "--context-seconds", "0"],
                 ["data", "manifest", str(tmp_path / "no-data"), str(tmp_path / "m.jsonl"),
                  "--workers", "0"]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("audio-core: error:") and "Traceback" not in err, err


def test_the_bound_is_the_last_exact_integer_of_a_double():
    assert float(MAX_MAGNITUDE) + 1 == float(MAX_MAGNITUDE)
    assert float(MAX_MAGNITUDE - 1) + 1 == float(MAX_MAGNITUDE)
