"""Output-path checks: a command never writes over its own inputs or a file it did not make.

- :func:`check_outputs` refuses an output that is the same file as an input (same path,
  a symlink or a hard link to it) or an existing folder;
- :func:`check_token_output` refuses to write a token file over an existing file that is
  not a token file, or under an audio extension (``encode x.wav y.wav``);
- :func:`check_export_target` refuses to export into a run folder, a checkpoint, or a
  folder holding a model or config that is not an earlier export.

- :func:`claim_outputs`, used by every command that writes files, refuses an output that
  is an input, lies inside an export, run or latents folder, is a folder, or sits under a
  path that is not a writable folder, and refuses to replace an existing file unless it is
  an earlier output of the same command (``owned``) or ``--overwrite`` is given, which
  moves the old file aside (``NAME.old-<time>``) rather than deleting it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from audio_core.errors import AudioCoreError, shortened

#: Files an export folder holds (``audio_core.engine.export``).
EXPORT_FILES = ("model.safetensors", "config.yaml", "export.json")
TOKEN_MAGIC = b"ACTOKENS"


class OutputPathError(AudioCoreError, ValueError):
    """An output path would overwrite an input or a file the command does not own."""


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (also through links); paths that do not
    exist are compared after resolving ``..`` and symlinks of their folders."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_outputs(outputs: Mapping[str, str | os.PathLike],
                  inputs: Mapping[str, str | os.PathLike]) -> None:
    """:class:`OutputPathError` when an output (``{label: path}``) is the same file as an
    input, or is an existing folder. Labels name the arguments in the message."""
    for out_label, out in outputs.items():
        if Path(out).is_dir():
            raise OutputPathError(f"{out_label} '{out}' is a folder; give a file path")
        for in_label, source in inputs.items():
            if same_file(out, source):
                raise OutputPathError(
                    f"{out_label} '{out}' is the same file as {in_label} '{source}'; refusing "
                    f"to overwrite the input. Choose another output path.")


def report_paths(target: str | os.PathLike, report: bool = True) -> dict[str, Path]:
    """The files ``reconstruct`` writes: ``OUT`` and, with ``report``, its ``.json``/``.png``
    siblings (extension replaced: ``out.wav`` -> ``out.json``, ``out.png``)."""
    target = Path(target)
    paths = {"OUT": target}
    if report:
        paths.update({"OUT's .json report": target.with_suffix(".json"),
                      "OUT's .png report": target.with_suffix(".png")})
    return paths


def is_token_file(path: Path) -> bool:
    """True when ``path`` starts like a token file (an earlier output of ``encode``)."""
    return _is_token_file(path)


def _is_token_file(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(TOKEN_MAGIC)) == TOKEN_MAGIC
    except OSError:
        return False


def check_token_output(path: str | os.PathLike, overwrite: bool = False) -> None:
    """:class:`OutputPathError` unless ``path`` may receive a token file: not under an audio
    extension, and either absent or already a token file."""
    from audio_core.audio.io import FORMATS

    path = Path(path)
    if path.suffix.lower() in FORMATS:
        raise OutputPathError(f"OUT '{path}' has an audio extension, but encode writes a "
                              f"token file; name it e.g. '{path.with_suffix('.tokens')}'")
    if path.is_file() and not _is_token_file(path) and not overwrite:
        raise OutputPathError(f"OUT '{path}' exists and is not a token file; refusing to "
                              f"replace it. Choose another output path, or pass --overwrite "
                              f"(the old file is moved aside to NAME.old-<time>).")


def check_export_target(run_dir: str | os.PathLike, out: str | os.PathLike,
                        checkpoint: str | os.PathLike | None = None, *,
                        overwrite: bool = False) -> None:
    """:class:`OutputPathError` when exporting ``run_dir`` into ``out`` would overwrite the
    run folder, a checkpoint, or a model/config that is not an earlier export (with
    ``overwrite``, such a folder is moved aside instead)."""
    out, run_dir = Path(out), Path(run_dir)
    for label, path in (("the run folder", run_dir), ("the checkpoint", checkpoint)):
        if path is not None and same_file(out, path):
            raise OutputPathError(f"OUT '{out}' is {label} '{path}'; export into a new folder")
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and Path(os.path.realpath(out)).is_relative_to(
            os.path.realpath(checkpoints)):
        raise OutputPathError(f"OUT '{out}' is inside the run's checkpoints '{checkpoints}'; "
                              f"export into a new folder")
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"OUT '{out}' exists and is not a folder")
    owner = protected_folder(out)
    if owner is not None:
        raise OutputPathError(f"OUT '{out}' is inside {owner}; export into a new folder")
    check_writable_parent(out / "export.json")
    if out.is_dir() and not (out / "export.json").is_file():
        clash = [name for name in EXPORT_FILES if (out / name).exists()]
        if clash and overwrite:
            move_aside(out)
        elif clash:
            raise OutputPathError(
                f"OUT '{out}' already holds {', '.join(clash)} that an export did not write; "
                f"refusing to overwrite them. Export into a new or empty folder, or pass "
                f"--overwrite (the folder is moved aside to NAME.old-<time>, not deleted).")


def check_format_target(source: str | os.PathLike, out: str | os.PathLike, *,
                        overwrite: bool = False) -> None:
    """:class:`OutputPathError` unless ``out`` may receive another format's files (ONNX
    graphs, a transformers folder) exported from ``source``: not ``source`` itself, not
    inside a folder audio-core owns, a new or empty folder (with ``overwrite``, a folder
    holding files is moved aside instead)."""
    out = Path(out)
    if same_file(out, source):
        raise OutputPathError(f"OUT '{out}' is the folder being exported; export into a new "
                              f"folder")
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"OUT '{out}' exists and is not a folder")
    owner = protected_folder(out)
    if owner is None and out.is_dir() and folder_kind(out) is not None:
        owner = f"the {folder_kind(out)} folder '{out}' itself"
    if owner is not None:
        raise OutputPathError(f"OUT '{out}' is inside {owner}; export into a new folder")
    check_writable_parent(out / "export.json")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and overwrite:
        move_aside(out)
    elif held:
        raise OutputPathError(
            f"OUT '{out}' already holds {shortened(held, 5)}; refusing to write over them. "
            f"Export into a new or empty folder, or pass --overwrite (the folder is moved "
            f"aside to NAME.old-<time>, not deleted).")


#: What a run or latents folder owns (relative paths, first part): never written by others.
RUN_OWNED = ("checkpoints", "config.yaml", "trainer_state.json", "bad_files.json")
LATENTS_OWNED = ("index.json", "latents.json", "progress", "progress.jsonl")


def folder_kind(folder: Path) -> str | None:
    """``"export"``, ``"run"`` or ``"latents"`` when ``folder`` is one (by its files)."""
    if (folder / "export.json").is_file() or all((folder / n).is_file()
                                                 for n in EXPORT_FILES[:2]):
        return "export"
    if (folder / "checkpoints").is_dir() and (folder / "config.yaml").is_file():
        return "run"
    if (folder / "latents.json").is_file() or ((folder / "index.json").is_file() and (
            (folder / "progress").is_dir() or any(folder.glob("rank0*")))):
        return "latents"
    return None


def protected_folder(path: str | os.PathLike) -> str | None:
    """``"the export folder X"`` (or run, latents folder) when writing ``path`` would put a
    file into what that folder owns: anything in an export; a run's checkpoints and
    config; a latents folder's index, key, progress and shards. New files beside them
    (``RUN/export``, ``LATENTS/stats.safetensors``) are fine."""
    target = Path(os.path.realpath(path))
    for parent in target.parents:
        kind = folder_kind(parent)
        if kind is None:
            continue
        first = target.relative_to(parent).parts[0]
        if kind == "export" or (kind == "run" and first in RUN_OWNED) or (
                kind == "latents" and (first in LATENTS_OWNED or first.startswith("rank0")
                                       or first.endswith(".tar"))):
            return f"the {kind} folder '{parent}'"
    return None


def check_writable_parent(path: str | os.PathLike, label: str = "OUT") -> None:
    """:class:`OutputPathError` unless ``path``'s nearest existing ancestor is a folder this
    process may write into (checked before any work, instead of a traceback after it)."""
    path = Path(path)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{label} '{path}': '{parent}' is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{label} '{path}': cannot write into '{parent}' "
                              f"(permission denied)")


def move_aside(path: Path) -> Path:
    """Rename ``path`` to a free sibling ``NAME.old-<time>[-N]``; returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = path.with_name(f"{path.name}.old-{stamp}"), 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = path.with_name(f"{path.name}.old-{stamp}-{n}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        raise OutputPathError(f"--overwrite: could not move '{path}' aside to '{aside}' "
                              f"({exc.strerror})") from exc
    return aside


def claim_outputs(outputs: Mapping[str, str | os.PathLike],
                  inputs: Mapping[str, str | os.PathLike] | None = None, *,
                  overwrite: bool = False,
                  owned: Callable[[Path], bool] | None = None) -> list[Path]:
    """Check the files a command will write (``{label: path}``) before any work.

    Refused always: an output that is an input (:func:`check_outputs`), a folder, a path
    under a file or an unwritable folder, a file that an export, run or latents folder owns
    (:func:`protected_folder`). An existing file is
    replaced only when ``owned(path)`` says it is an earlier output of the same command;
    otherwise it is refused, or with ``overwrite`` moved aside. Returns the moved files."""
    check_outputs(outputs, inputs or {})
    existing = []
    for label, out in outputs.items():
        out = Path(out)
        owner = protected_folder(out)
        if owner is not None:
            raise OutputPathError(f"{label} '{out}' is inside {owner}; refusing to write "
                                  f"there. Choose a path outside it.")
        check_writable_parent(out, label)
        if (out.exists() or out.is_symlink()) and not (owned is not None and owned(out)):
            existing.append((label, out))
    if existing and not overwrite:
        shown = ", ".join(f"{label} '{out}'" for label, out in existing)
        raise OutputPathError(f"{shown} already exist(s); refusing to replace. Choose another "
                              f"path, or pass --overwrite (the old file is moved aside to "
                              f"NAME.old-<time>, not deleted)")
    return [move_aside(out) for _, out in existing]
