"""Writing files: atomically (temporary file, then rename), with the permissions the process
umask gives (``0644`` under umask ``022``, like any other tool), and with disk faults (a
full disk, no permission, a file where a folder is expected) raised as
:class:`WriteError`, a one-line error naming the path and the cause.

safetensors writes its files ``0600`` whatever the umask; :func:`save_safetensors` fixes
that, so a colleague can load a shared export.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from audio_core.errors import AudioCoreError

_CAUSES = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
           errno.EROFS: "read-only file system",
           errno.ENOTDIR: "a part of the path is a file, not a folder",
           errno.EISDIR: "it is a folder", errno.EEXIST: "it already exists",
           errno.ENAMETOOLONG: "the name is too long"}


class ReadError(AudioCoreError, OSError):
    """A file exists but cannot be read (permissions); the message names the path."""

    def __str__(self) -> str:
        return str(self.strerror)


def check_readable(path: str | os.PathLike, what: str = "file") -> None:
    """:class:`ReadError` ``WHAT PATH: permission denied ...`` when ``path`` exists but
    this process may not open it, so that a reader's own error (``No such file``, ``not a
    complete safetensors file``) is not shown instead. Other faults are left to the
    reader."""
    try:
        with open(path, "rb"):
            pass
    except PermissionError as exc:
        raise ReadError(exc.errno, f"{what} {path}: permission denied (this user cannot "
                                   f"read it; check its permissions)") from exc
    except OSError:
        pass


class WriteError(AudioCoreError, OSError):
    """A file could not be written; the message names the path and the cause."""

    def __str__(self) -> str:
        return str(self.strerror)


def cause(exc: OSError) -> str:
    """A short reason for ``exc`` (``"no space left on the device"``)."""
    return _CAUSES.get(exc.errno or 0) or exc.strerror or str(exc)


def write_error(path: str | os.PathLike, exc: OSError, what: str = "write") -> WriteError:
    """:class:`WriteError` ``cannot write PATH: CAUSE``."""
    if isinstance(exc, WriteError):
        return exc
    return WriteError(exc.errno, f"cannot {what} {path}: {cause(exc)}")


def umask() -> int:
    """The process umask (read without changing it for good)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | os.PathLike) -> None:
    """Give ``path`` the mode a new file gets under the process umask (``0666 & ~umask``)."""
    os.chmod(path, 0o666 & ~umask())


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it becomes
    ``path`` (umask permissions), else it is removed and the previous ``path`` stays
    intact. ``OSError`` becomes :class:`WriteError` naming ``path``."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        apply_umask(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_error(path, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def save_safetensors(tensors: Mapping[str, Any], path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` (contiguous CPU copies) to ``path`` atomically, umask permissions."""
    from safetensors.torch import save_file

    data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(data, str(tmp), metadata=dict(metadata) if metadata else None)
    return Path(path)
