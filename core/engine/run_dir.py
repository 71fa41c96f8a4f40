"""Where a training run writes, and the rule that protects an existing run folder.

``audio-core train`` writes into ``run.output_dir/run.name``. :func:`prepare_run_dir`
refuses a folder that already holds anything (another run's checkpoints and
``config.yaml``, or any file of the user's) unless the user asked to continue it
(``--resume RUN_DIR``) or to start over (``--overwrite``), in which case the old folder is
renamed to ``<name>.old-<YYYYmmdd-HHMMSS>`` beside it: nothing is deleted.

Under a launcher (``torchrun``, ``deepspeed``) every rank runs this, usually before the
process group exists: only global rank 0 (``$RANK``) renames, and no rank writes into the
folder before the process-group rendezvous, so all ranks see the same folder state. When
a process group already exists (several runs in one process), ranks wait for each other
after checking and after renaming, for the same reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from audio_core import distributed
from audio_core.errors import AudioCoreError, ConfigError, shortened

#: Exit status of ``audio-core train`` when SIGTERM/SIGINT stopped it after saving a
#: checkpoint: the run is resumable (``EX_TEMPFAIL`` of sysexits.h: "try again later").
EXIT_STOPPED = 75
#: ``--resume auto``: continue the config's run folder if it holds a complete checkpoint,
#: else start fresh (see :func:`auto_resume`).
AUTO = "auto"


class RunDirError(AudioCoreError):
    """The run folder cannot be used as asked (it holds another run, or is not a folder)."""


def _contents(path: Path) -> list[str]:
    try:
        return sorted(p.name for p in path.iterdir())
    except OSError as exc:
        raise RunDirError(f"cannot read run folder {path} ({exc.strerror})") from exc


def _check_writable(path: Path) -> None:
    """:class:`RunDirError` unless ``path`` (or, if absent, its nearest existing parent)
    can be written to: better now than a traceback when the first file is saved."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f"its parent folder {existing}: "
        raise RunDirError(f"cannot write run folder {path}: {where}permission denied; set "
                          f"run.output_dir to a folder you can write to")


def aside_name(path: Path) -> Path:
    """A free sibling ``<name>.old-<time>[-N]`` of ``path``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = path.with_name(f"{path.name}.old-{stamp}"), 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.old-{stamp}-{n}")
    return candidate


def prepare_run_dir(run_dir: str | os.PathLike, *, resume: bool = False,
                    overwrite: bool = False, rank: int | None = None,
                    cfg: Any = None) -> Path | None:
    """Check (and with ``overwrite`` clear) ``run_dir`` before a run writes into it.

    - ``resume``: ``run_dir`` must be an existing folder; with ``cfg`` (the config the
      resumed run will use), it must build the same model as the newest complete
      checkpoint (:func:`~audio_core.storage.weights_check.check_resume_config`), checked
      here before the run rewrites ``config.yaml``. ``overwrite`` together with
      ``resume`` is an error.
    - otherwise a missing or empty folder is fine; a non-empty one raises
      :class:`RunDirError` naming it and the flags, unless ``overwrite``: then rank 0
      (``rank``, default ``$RANK``) renames it aside and the new path is returned.
    """
    path = Path(run_dir)
    if resume and overwrite:
        raise RunDirError("--resume continues a run and --overwrite starts it over: give one")
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run folder {path} exists and is not a folder; set run.output_dir "
                          f"or run.name to a folder path")
    _check_writable(path)
    if resume:
        if not path.is_dir():
            raise RunDirError(f"--resume {path}: no such run folder")
        if cfg is not None:
            from audio_core.storage.checkpoint import CheckpointManager
            from audio_core.storage.weights_check import check_resume_config

            latest = CheckpointManager(path / "checkpoints").latest()
            if latest is not None:
                check_resume_config(latest, cfg)
        distributed.barrier()  # every rank has read the run before rank 0 rewrites its config.yaml
        return None
    if not path.is_dir():
        distributed.barrier()  # every rank has looked before rank 0 creates it
        return None
    contents = _contents(path)
    if not contents:
        distributed.barrier()
        return None
    if not overwrite:
        shown = shortened(contents, 5)
        raise RunDirError(
            f"run folder {path} is not empty ({shown}); nothing was changed. Continue that "
            f"run with `audio-core train --resume {path}`, start it over with --overwrite "
            f"(the old folder is renamed to {path.name}.old-<time>, not deleted), or choose "
            f"another run.name or run.output_dir")
    distributed.barrier()  # every rank has looked before rank 0 renames
    aside = None
    if (int(os.environ.get("RANK", 0)) if rank is None else rank) == 0:
        aside = aside_name(path)
        try:
            os.replace(path, aside)
        except OSError as exc:
            raise RunDirError(f"--overwrite: could not rename {path} to {aside} "
                              f"({exc.strerror})") from exc
    distributed.barrier()
    return aside


def auto_resume(run_dir: str | os.PathLike) -> str:
    """What ``--resume auto`` does with ``run_dir`` (the config's run folder):

    - ``"resume"``: it holds a complete checkpoint (the newest one is used);
    - ``"fresh"``: it is absent or empty: a new run starts there;
    - ``"restart"``: it is a run folder (``config.yaml``) without a complete checkpoint
      (stopped during set-up, or killed before its first save): it is moved aside as by
      ``--overwrite`` (nothing deleted) and a new run starts.

    A folder holding anything else is not guessed at: :class:`RunDirError`, as for a new run.
    Reads only, so every rank reaches the same answer before any rank writes.
    """
    from audio_core.storage.checkpoint import CheckpointManager

    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--resume auto: run folder {path} exists and is not a folder")
    if not path.is_dir() or not _contents(path):
        return "fresh"
    if CheckpointManager(path / "checkpoints").latest() is not None:
        return "resume"
    if (path / "config.yaml").is_file():
        return "restart"
    raise RunDirError(
        f"--resume auto: {path} is not empty and holds no audio-core run (no config.yaml, no "
        f"checkpoint); nothing was changed. Move it away, or choose another run.name or "
        f"run.output_dir")



@contextlib.contextmanager
def setting_up(run_dir: str | os.PathLike, *, fresh: bool, rank: int | None = None
               ) -> Iterator[None]:
    """Around a run's set-up (building data, model, engines): an exception that is not an
    :class:`AudioCoreError` becomes a :class:`ConfigError` saying set-up failed (no bare
    traceback for, e.g., a task rejecting its config), and for a ``fresh`` run (a folder
    that was absent or empty before, see :func:`prepare_run_dir`) rank 0 removes what the
    failed set-up wrote, so the corrected command can run again without ``--overwrite``."""
    path = Path(run_dir)
    existed = path.is_dir()
    try:
        yield
    except BaseException as exc:
        if fresh and (int(os.environ.get("RANK", 0)) if rank is None else rank) == 0:
            _remove_contents(path, keep_folder=existed)
        if isinstance(exc, Exception) and not isinstance(exc, AudioCoreError):
            raise ConfigError(f"setting up the run failed: {type(exc).__name__}: {exc}") \
                from exc
        raise


def _remove_contents(path: Path, *, keep_folder: bool) -> None:
    if not path.is_dir():
        return
    if not keep_folder:
        shutil.rmtree(path, ignore_errors=True)
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def lock_path(run_dir: str | os.PathLike) -> Path:
    """The lock file of run folder ``run_dir``: ``.<name>.lock`` beside it (so it guards
    the name before the folder exists, and survives ``--overwrite`` moving it aside)."""
    path = Path(run_dir)
    return path.with_name(f".{path.name}.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(fd: int) -> tuple[str, str]:
    """``(pid, host)`` written in a lock file (``"unknown"`` where it says nothing)."""
    words = os.pread(fd, 256, 0).decode(errors="replace").split()
    return (words[0] if words else "unknown", words[1] if len(words) > 1 else "")


def _open_lock(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise RunDirError(f"cannot create the run lock {path} ({exc.strerror})") from exc


def _try_flock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _locked(run_dir: str | os.PathLike, path: Path, force: bool) -> int:
    """A descriptor of ``path`` holding its ``flock``. A lock held by another process is
    an error naming it, or with ``force`` is broken: the lock file is replaced by a new one
    (the old holder keeps a lock on a file nobody looks at any more)."""
    import logging
    import socket

    log = logging.getLogger(__name__)
    fd = _open_lock(path)
    if not _try_flock(fd):
        pid, host = _holder(fd)
        where = f"pid {pid}" + (f" on {host}" if host else "")
        if not force:
            os.close(fd)
            raise RunDirError(
                f"run folder {run_dir} is in use by another training process ({where}, "
                f"lock {path}); wait for it to finish or stop it, or choose another "
                f"run.name; if that process is gone but its lock is not (a crashed host on "
                f"a shared file system), pass --force-unlock")
        log.warning("--force-unlock: breaking the lock %s of run folder %s held by %s; "
                    "make sure that process is not running", path, run_dir, where)
        os.close(fd)
        path.unlink(missing_ok=True)
        fd = _open_lock(path)
        if not _try_flock(fd):  # someone else took the new one in between
            os.close(fd)
            raise RunDirError(f"run folder {run_dir}: another process took the lock {path} "
                              f"while --force-unlock replaced it; try again")
    pid, host = _holder(fd)
    here = socket.gethostname()
    if pid.isdigit() and int(pid) != os.getpid() and (host or here) == here and not (
            _pid_alive(int(pid))):
        log.warning("taking over the lock of run folder %s from pid %s, which is no longer "
                    "running (it was killed or crashed)", run_dir, pid)
    elif pid.isdigit() and host and host != here:
        log.warning("taking over the lock of run folder %s from pid %s on %s, which "
                    "released it", run_dir, pid, host)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {here}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, *, rank: int | None = None,
             force: bool = False) -> Iterator[None]:
    """Hold the lock of ``run_dir`` while a run uses it: one training process group per run
    folder. A second ``train`` with the same run name, or a second ``--resume`` of it,
    raises :class:`RunDirError` naming the holder's pid and host. The lock is an ``flock``
    that the kernel releases when the holder dies, so a lock left by a killed process is
    taken over (with a warning naming its pid). ``force`` (``train --force-unlock``) breaks
    a lock that is still held, for a holder that is gone but whose lock is not (another
    host on a shared file system). Only global rank 0 (``rank``, default ``$RANK``) locks:
    the other ranks belong to the same run."""
    if (int(os.environ.get("RANK", 0)) if rank is None else rank) != 0:
        yield
        return
    path = lock_path(run_dir)
    _check_writable(path)
    fd = _locked(run_dir, path, force)
    try:
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
