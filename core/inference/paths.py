"""Output-path checks: a command never writes over its own inputs or a file it did not make.

- :func:`check_outputs` refuses an output that is the same file as an input (same path,
  a symlink or a hard link to it) or an existing folder;
- :func:`check_token_output` refuses to write a token file over an existing file that is
  not a token file, or under an audio extension (``encode x.wav y.wav``);
- :func:`check_export_target` refuses to export into a run folder, a checkpoint, or a
  folder holding a model or config that is not an earlier export.

Replacing an earlier output of the same kind (an audio file by ``reconstruct``/``decode``,
a token file by ``encode``, an export by ``export``) is allowed: re-running a command
updates its results.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from audio_core.errors import AudioCoreError

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


def _is_token_file(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(TOKEN_MAGIC)) == TOKEN_MAGIC
    except OSError:
        return False


def check_token_output(path: str | os.PathLike) -> None:
    """:class:`OutputPathError` unless ``path`` may receive a token file: not under an audio
    extension, and either absent or already a token file."""
    from audio_core.audio.io import FORMATS

    path = Path(path)
    if path.suffix.lower() in FORMATS:
        raise OutputPathError(f"OUT '{path}' has an audio extension, but encode writes a "
                              f"token file; name it e.g. '{path.with_suffix('.tokens')}'")
    if path.is_file() and not _is_token_file(path):
        raise OutputPathError(f"OUT '{path}' exists and is not a token file; refusing to "
                              f"replace it. Choose another output path or remove it first.")


def check_export_target(run_dir: str | os.PathLike, out: str | os.PathLike,
                        checkpoint: str | os.PathLike | None = None) -> None:
    """:class:`OutputPathError` when exporting ``run_dir`` into ``out`` would overwrite the
    run folder, a checkpoint or a model/config that is not an earlier export."""
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
    if out.is_dir() and not (out / "export.json").is_file():
        clash = [name for name in EXPORT_FILES if (out / name).exists()]
        if clash:
            raise OutputPathError(
                f"OUT '{out}' already holds {', '.join(clash)} that an export did not write; "
                f"refusing to overwrite them. Export into a new or empty folder.")
