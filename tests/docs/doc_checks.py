"""Argument checks of documented commands that are not run (``parse`` mode).

:func:`check` takes one simple command (a list of words) and returns ``None`` when the
programs it names would accept its arguments, else a message. Each launcher is checked with
its own parser (``deepspeed``'s, ``torchrun``'s, pip's, audio-core's), and the command a
launcher starts is checked in turn (``deepspeed --module audio_core train ...`` checks the
``train`` arguments too). Local files a command names (constraints, editable installs,
scripts, tox environments, test paths) must exist under ``root``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from doc_blocks import strip_assignments, words_of

#: Shell words that are not programs to check (set-up, control flow, output).
SHELL_WORDS = frozenset({".", "source", "export", "set", "cd", "if", "then", "else", "fi",
                         "while", "until", "do", "done", "exit", "echo", "trap", "wait",
                         "[", "test", ":", "true", "false", "mkdir", "ls", "cat", "scontrol",
                         "sbatch", "for", "case", "esac", "sleep", "kill"})
#: Values for ``$NAME`` in checked commands (what a scheduler or the recipe would set).
SAMPLE_ENV = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "NODE_RANK": "0",
              "NNODES": "2", "SLURM_NNODES": "2", "SLURM_NODEID": "0", "SLURM_PROCID": "0",
              "SLURM_LOCALID": "0", "SLURM_NTASKS": "8", "SLURM_JOB_ID": "1",
              "SLURM_GPUS_ON_NODE": "4", "SLURM_NTASKS_PER_NODE": "4", "GPUS_PER_NODE": "4"}


_PIP_PARSE = """
import json, sys
from pip._internal.commands import create_command
options, names = create_command("install").parse_args(sys.argv[1:])
print(json.dumps({"constraints": options.constraints, "requirements": options.requirements,
                  "editables": options.editables, "names": names}))
"""


class _Stop(Exception):
    """Raised by the patched ``parse_args`` once a script's arguments parsed."""


@contextlib.contextmanager
def _quiet():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        yield err


def _argparse(parse: Callable[[], object], what: str) -> tuple[object | None, str | None]:
    with _quiet() as err:
        try:
            return parse(), None
        except SystemExit as exc:
            if exc.code in (0, None):
                return None, None
            lines = [ln for ln in err.getvalue().splitlines() if "error" in ln] or \
                [err.getvalue().strip()[-300:]]
            return None, f"{what}: {lines[-1]}"


def expand(word: str) -> str:
    """``$NAME``/``${NAME}`` replaced by :data:`SAMPLE_ENV` values (others kept)."""
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?",
                  lambda m: SAMPLE_ENV.get(m.group(1), m.group(0)), word)


class Checker:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- dispatch ---------------------------------------------------------------------------
    def check_line(self, command: str) -> str | None:
        """``None`` if every simple command of the line checks out (a line that starts with
        a shell word, e.g. ``export X=$(...)`` or ``if ...; then ...; fi``, is not checked)."""
        first = command.split(maxsplit=1)[0] if command.strip() else ""
        if first in SHELL_WORDS:
            return None
        for words in words_of(command):
            problem = self.check(words)
            if problem:
                return problem
        return None

    def check(self, words: list[str]) -> str | None:
        env = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words
               if w in words[:len(words) - len(strip_assignments(words))]}
        words = [expand(w) for w in strip_assignments(words)]
        if words[:1] == ["exec"]:
            words = words[1:]
        if not words or words[0] in SHELL_WORDS:
            return None
        program, args = Path(words[0]).name, words[1:]
        if program in {"python", "python3"}:
            return self.python(args, env)
        handler = {"audio-core": self.audio_core, "torchrun": self.torchrun,
                   "deepspeed": self.deepspeed, "pip": self.pip, "pip3": self.pip,
                   "tox": self.tox, "pytest": self.paths, "ruff": self.ruff,
                   "srun": self.srun, "bash": self.bash, "sh": self.bash}.get(program)
        if handler is None:
            return f"no argument check for program {program!r} (mark the command 'skip " \
                   f"{program} (REASON)' or run it)"
        return handler(args)

    # -- programs ---------------------------------------------------------------------------
    def audio_core(self, args: list[str]) -> str | None:
        from audio_core.cli import build_parser

        parsed, problem = _argparse(lambda: build_parser().parse_args(args), "audio-core")
        if problem or parsed is None:
            return problem
        if [a for a in args if not a.startswith("-")][:1] == ["launch"]:
            inner = _after_launch(args)
            return self.check(inner) if inner else "audio-core launch: no command given"
        return None

    def python(self, args: list[str], env: dict[str, str]) -> str | None:
        if args[:2] == ["-m", "audio_core"]:
            return self.audio_core(args[2:])
        if args[:2] == ["-m", "torch.distributed.run"]:
            return self.torchrun(args[2:])
        if args[:2] == ["-m", "pip"]:
            return self.pip(args[2:])
        if args[:2] == ["-m", "tox"]:
            return self.tox(args[2:])
        if args[:2] == ["-m", "pytest"]:
            return self.paths(args[2:])
        if args[:2] == ["-m", "venv"]:
            return None
        if args and args[0].endswith(".py"):
            return self.script(args[0], args[1:], env)
        return f"python {' '.join(args[:2])}: no argument check for this form"

    def script(self, script: str, args: list[str], env: dict[str, str]) -> str | None:
        """``python SCRIPT ARGS``: the script exists and its argparse parser takes ARGS
        (the script runs in this process up to its ``parse_args`` call, then stops)."""
        path = self.root / script
        if not path.is_file():
            return f"{script}: no such file"
        original = argparse.ArgumentParser.parse_args

        def parse_then_stop(parser, *a, **k):
            original(parser, *a, **k)
            raise _Stop

        extra = [str(self.root / p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        saved_argv, saved_path = sys.argv, list(sys.path)
        argparse.ArgumentParser.parse_args = parse_then_stop
        # as `python SCRIPT` does, the script's folder comes first on sys.path
        sys.argv, sys.path[:0] = [str(path), *args], [str(path.parent), *extra]
        try:
            with _quiet() as err:
                try:
                    runpy.run_path(str(path), run_name="__main__")
                except _Stop:
                    return None
                except SystemExit as exc:
                    if exc.code in (0, None):
                        return None
                    return f"{script}: {err.getvalue().strip().splitlines()[-1:]}"
            return f"{script}: did not parse arguments with argparse"
        finally:
            argparse.ArgumentParser.parse_args = original
            sys.argv, sys.path[:] = saved_argv, saved_path

    def torchrun(self, args: list[str]) -> str | None:
        from torch.distributed.run import get_args_parser

        parsed, problem = _argparse(lambda: get_args_parser().parse_args(args), "torchrun")
        if problem or parsed is None:
            return problem
        inner = [parsed.training_script, *parsed.training_script_args]
        if parsed.module:
            return self.python(["-m", *inner], {})
        return self.python(inner, {}) if inner[0].endswith(".py") else self.check(inner)

    def deepspeed(self, args: list[str]) -> str | None:
        from deepspeed.launcher.runner import parse_args

        parsed, problem = _argparse(lambda: parse_args(args), "deepspeed")
        if problem or parsed is None:
            return problem
        inner = [parsed.user_script, *parsed.user_args]
        if parsed.module:
            return self.python(["-m", *inner], {})
        return self.python(inner, {})

    def pip(self, args: list[str]) -> str | None:
        """``pip install ARGS``: pip's own option parser (in a subprocess: importing pip
        here would swap distutils under DeepSpeed), then the local paths it names."""
        if args[:1] != ["install"]:
            return None
        proc = subprocess.run([sys.executable, "-c", _PIP_PARSE, *args[1:]], text=True,
                              capture_output=True, timeout=120)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
            return f"pip install: {(lines or [proc.stderr.strip()[-300:]])[-1]}"
        parsed = json.loads(proc.stdout.strip().splitlines()[-1])
        given = set(args)
        local = [c for c in parsed["constraints"] + parsed["requirements"] if c in given]
        local += [e.split("[")[0] for e in parsed["editables"]]
        local += [n.split("[")[0] for n in parsed["names"] if n.startswith((".", "/")) or "/" in n]
        missing = [p for p in local if not (self.root / p).exists()]
        return f"pip install: no such path {missing[0]!r}" if missing else None

    def tox(self, args: list[str]) -> str | None:
        envs = []
        for i, word in enumerate(args):
            if word == "-e" and i + 1 < len(args):
                envs += args[i + 1].split(",")
            elif word.startswith("-e") and len(word) > 2:
                envs += word[2:].split(",")
        known = tox_envs(self.root / "tox.ini")
        unknown = [e for e in envs if e not in known]
        return f"tox: no environment {unknown[0]!r} in tox.ini" if unknown else None

    def paths(self, args: list[str]) -> str | None:
        for word in args:
            looks_like_path = not word.startswith("-") and ("/" in word or Path(word).suffix)
            if looks_like_path and not (self.root / word.split("::")[0]).exists():
                return f"no such path {word!r}"
        return None

    def ruff(self, args: list[str]) -> str | None:
        return self.paths(args[1:] if args[:1] in (["check"], ["format"]) else args)

    def srun(self, args: list[str]) -> str | None:
        """``srun [OPTIONS] COMMAND``: the command (first word naming a program we check)."""
        for i, word in enumerate(args):
            if Path(word).name in {"audio-core", "torchrun", "deepspeed", "python",
                                   "python3", "bash", "sh"}:
                return self.check(args[i:])
        return "srun: no command found after its options"

    def bash(self, args: list[str]) -> str | None:
        if len(args) >= 2 and args[0] == "-c":
            return self.check_line(args[1])
        return None


def _after_launch(args: list[str]) -> list[str]:
    index = args.index("launch") + 1
    while index < len(args) and args[index].startswith("--") and args[index] != "--":
        index += 2 if args[index] == "--grace" else 1
    rest = args[index:]
    return rest[1:] if rest[:1] == ["--"] else rest


def tox_envs(tox_ini: Path) -> set[str]:
    """Environment names defined in ``tox.ini`` (env_list, ``[testenv:x]``, factor lists)."""
    text = tox_ini.read_text(encoding="utf-8")
    names: set[str] = set()
    for section in re.findall(r"^\[testenv:([^\]]+)\]", text, re.M):
        section = section.strip()
        names.update(section.strip("{}").split(",") if section.startswith("{") else [section])
    listed = re.search(r"^env_list\s*=\s*(.+)$", text, re.M)
    if listed:
        names.update(n.strip() for n in listed.group(1).split(","))
    return {n.strip() for n in names if n.strip()}
