"""The fenced blocks of a Markdown file and the ``doctest`` markers before them.

A shell block (```` ```bash ````, ``sh``, ``shell``, ``console``) is a list of
:class:`Command` lines (continuation lines joined, comments dropped), each with its line in
the file. An HTML comment right before a fence (only blank lines between) may hold
directives for that block, one per line (docs/plugin-authors.md, "Commands in the docs are
tested")::

    <!-- doctest parse torchrun, deepspeed (needs GPUs) -->
    <!-- doctest
    replace train.max_steps=200 => train.max_steps=2
    skip (the output of the command above, not a command)
    file my_stage2.yaml
    -->

- ``run [PREFIX, ...] [(REASON)]``: run the matching commands (the default);
- ``parse [PREFIX, ...] [(REASON)]``: only check their arguments with the programs' own
  parsers (GPU, several machines, a scheduler, minutes of work);
- ``skip [PREFIX, ...] (REASON)``: neither (a reason is required);
- ``replace OLD => NEW``: text substitution in the block before anything else (tiny sizes;
  ``\\n`` in NEW is a line break);
- ``file NAME``: the block (any language) is written to NAME in the scratch folder first;
- ``setup COMMAND``: run COMMAND before the block (what the prose assumes exists).

A mode without prefixes applies to every command of the block; with prefixes, to the
commands that start with one of them (environment assignments such as ``A=1`` ignored).
A Python block (```` ```python ````) takes ``run`` (the snippet is executed as a script in
the scratch folder, after the shell blocks above it) or ``skip (REASON)``; unmarked, it is
shown only (in a plugin's docs every Python block must be marked).
Anything else in a marker is an error that names the file and line. This module imports
nothing heavy.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console", "zsh"})
PYTHON_LANGUAGES = frozenset({"python", "py"})
MODES = ("run", "parse", "skip")

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_MARKER = re.compile(r"<!--\s*doctest\b(.*?)-->", re.S)
_MODE = re.compile(r"^(run|parse|skip)\b\s*([^()]*?)\s*(?:\((.*)\))?\s*$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


class MarkerError(ValueError):
    """A ``doctest`` marker that cannot be read (the message names file and line)."""


@dataclass
class Rule:
    mode: str
    prefixes: tuple[str, ...]
    reason: str


@dataclass
class Command:
    """One logical command line of a shell block."""

    text: str
    line: int


@dataclass
class Block:
    """One fenced block: ``line`` is the line of its opening fence (1-based)."""

    path: Path
    line: int
    language: str
    body: str
    rules: list[Rule] = field(default_factory=list)
    replacements: list[tuple[str, str]] = field(default_factory=list)
    file: str | None = None
    setup: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.language in SHELL_LANGUAGES

    @property
    def is_python(self) -> bool:
        return self.language in PYTHON_LANGUAGES

    def python_mode(self) -> Rule | None:
        """A Python block's rule: ``run`` (executed), ``skip`` (with its reason) or None
        (not marked: shown only)."""
        return self.rules[0] if self.rules else None

    def text(self) -> str:
        """The body with the ``replace`` directives applied."""
        body = self.body
        for old, new in self.replacements:
            if old not in body:
                raise MarkerError(f"{self.where}: replace {old!r}: not in the block")
            body = body.replace(old, new)
        return body

    def commands(self) -> list[Command]:
        return split_commands(self.text(), self.line + 1, str(self.path))

    def mode_of(self, command: str) -> Rule | None:
        """The rule for ``command`` (prefix rules first, then block-wide ones), or None."""
        head = " ".join(strip_assignments(command.split()))
        for rule in self.rules:
            if any(head == p or head.startswith(p + " ") for p in rule.prefixes):
                return rule
        for rule in self.rules:
            if not rule.prefixes:
                return rule
        return None


def strip_assignments(words: list[str]) -> list[str]:
    """``words`` without leading ``NAME=value`` assignments."""
    index = 0
    while index < len(words) and _ASSIGNMENT.match(words[index]):
        index += 1
    return words[index:]


def split_commands(body: str, first_line: int, path: str = "") -> list[Command]:
    """Logical lines of a shell body: ``\\`` continuations joined, comments and blank lines
    dropped (a ``$ `` prompt is removed)."""
    out: list[Command] = []
    pending: list[str] = []
    start = first_line
    for offset, raw in enumerate(body.splitlines()):
        if not pending:
            start = first_line + offset
        line = raw.rstrip()
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        text = " ".join(part.strip() for part in pending).strip()
        pending = []
        if text.startswith("$ "):
            text = text[2:]
        text = _drop_comment(text)
        if text:
            out.append(Command(text, start))
    if pending:
        raise MarkerError(f"{path}:{start}: the block ends in a line continuation")
    return out


def _drop_comment(text: str) -> str:
    """``text`` without a trailing ``# comment`` (quotes respected)."""
    quote = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].rstrip()
    return text.strip()


def _directives(comment: str, path: Path, line: int) -> list[str]:
    text = comment.strip()
    if text.startswith(":"):
        text = text[1:]
    items = [part.strip() for part in text.splitlines() if part.strip()]
    if not items:
        raise MarkerError(f"{path}:{line}: empty doctest marker")
    return items


def _apply(block: Block, directive: str, where: str) -> None:
    word = directive.split(maxsplit=1)[0]
    rest = directive[len(word):].strip()
    if word in MODES:
        match = _MODE.match(directive)
        if not match:
            raise MarkerError(f"{where}: cannot read {directive!r}; expected "
                              f"'{word} [PREFIX, ...] [(REASON)]'")
        prefixes = tuple(p.strip() for p in match.group(2).split(",") if p.strip())
        reason = (match.group(3) or "").strip()
        if word == "skip" and not reason:
            raise MarkerError(f"{where}: 'skip' needs a reason in parentheses, e.g. "
                              f"'skip pip install (needs the network)'")
        block.rules.append(Rule(word, prefixes, reason))
    elif word == "replace":
        old, sep, new = rest.partition("=>")
        if not sep or not old.strip():
            raise MarkerError(f"{where}: expected 'replace OLD => NEW', got {directive!r}")
        block.replacements.append((old.strip(), new.strip().replace("\\n", "\n")))
    elif word == "file":
        if not rest or len(rest.split()) != 1:
            raise MarkerError(f"{where}: expected 'file NAME', got {directive!r}")
        block.file = rest
    elif word == "setup":
        if not rest:
            raise MarkerError(f"{where}: expected 'setup COMMAND'")
        block.setup.append(rest)
    else:
        raise MarkerError(f"{where}: unknown doctest directive {word!r} in {directive!r}; "
                          f"expected one of run, parse, skip, replace, file, setup")


def read_blocks(path: Path, root: Path | None = None) -> list[Block]:
    """Every fenced block of the Markdown file ``path`` with its markers applied (paths in
    messages are relative to ``root``)."""
    shown = path.relative_to(root) if root else path
    lines = path.read_text(encoding="utf-8").splitlines()
    text = "\n".join(lines)
    fenced = _fenced_lines(lines)
    markers: dict[int, tuple[int, list[str]]] = {}  # last line -> (first line, directives)
    for match in _MARKER.finditer(text):
        first = text.count("\n", 0, match.start()) + 1
        last = text.count("\n", 0, match.end()) + 1
        if first not in fenced:  # a marker shown inside a block is an example, not a marker
            markers[last] = (first, _directives(match.group(1), shown, first))
    blocks: list[Block] = []
    used: set[int] = set()
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        ticks, language = fence.group(1), fence.group(2).lower()
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].strip().startswith(ticks):
            body.append(lines[index])
            index += 1
        block = Block(shown, start + 1, language, "\n".join(body))
        above = _skip_blank_upwards(lines, start - 1)  # 0-based index of the line above
        found: list[int] = []
        while above >= 0 and (above + 1) in markers:
            found.append(above + 1)
            above = _skip_blank_upwards(lines, markers[above + 1][0] - 2)
        for last in reversed(found):  # in the order they are written
            first, items = markers[last]
            for item in items:
                _apply(block, item, f"{shown}:{first}")
            used.add(last)
        blocks.append(block)
        index += 1
    for last, items in markers.items():
        if last not in used:
            raise MarkerError(f"{shown}:{items[0]}: doctest marker not followed by a "
                              f"fenced block (only blank lines may come between)")
    for block in blocks:
        if block.is_python and (len(block.rules) > 1 or any(
                r.mode == "parse" or r.prefixes for r in block.rules)):
            raise MarkerError(f"{block.where}: a Python block takes one 'run' or "
                              f"'skip (REASON)', without prefixes")
        if block.rules and not (block.is_shell or block.is_python):
            raise MarkerError(f"{block.where}: run/parse/skip only apply to shell and Python "
                              f"blocks ({', '.join(sorted(SHELL_LANGUAGES | PYTHON_LANGUAGES))})"
                              f", not {block.language!r}")
    return blocks


def _fenced_lines(lines: list[str]) -> set[int]:
    """1-based numbers of the lines inside fenced blocks (fences included)."""
    inside: set[int] = set()
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence.group(1)):
            index += 1
        inside.update(range(start + 1, index + 2))
        index += 1
    return inside


def _skip_blank_upwards(lines: list[str], index: int) -> int:
    while index >= 0 and not lines[index].strip():
        index -= 1
    return index


def words_of(command: str) -> list[list[str]]:
    """The simple commands of a command line, split at ``&&``, ``||``, ``;`` and ``|``."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    parts: list[list[str]] = [[]]
    for token in lexer:
        if token in {"&&", "||", ";", "|", "&"}:
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]
