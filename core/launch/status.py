"""What each training process tells ``audio-core launch`` about itself.

``audio-core launch`` (:mod:`audio_core.launch.supervisor`) sets ``$AUDIO_CORE_STATUS_DIR``
for the launcher it starts; every ``audio-core train`` process below it (each rank, however
deeply the launcher nests them) writes ``worker_<pid>.json`` there::

    {"pid": 4242, "created": 1764480000.12, "rank": 1, "state": "running", "step": null}

first when it starts (so the supervisor can signal it directly, past the launchers) and
again when it ends, with ``state`` one of :data:`STATES` and the step it reached. Files are
written atomically (temporary file, then rename). Without ``$AUDIO_CORE_STATUS_DIR`` nothing
is written. Importing this module does not import torch.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATUS_DIR_ENV = "AUDIO_CORE_STATUS_DIR"
RUNNING, FINISHED, STOPPED, FAILED = "running", "finished", "stopped", "failed"
#: ``finished``: reached ``train.max_steps``; ``stopped``: SIGTERM/SIGINT, checkpoint saved
#: (every rank returns from that save only once it is complete); ``failed``: an error.
STATES = (RUNNING, FINISHED, STOPPED, FAILED)


def process_created(pid: int) -> float | None:
    """Start time of process ``pid`` (tells a live process from a new one that reuses the
    pid), or ``None`` when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _write(directory: Path, record: dict[str, Any]) -> None:
    path = directory / f"worker_{record['pid']}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, path)


class WorkerStatus:
    """This process's status file under ``directory`` (``None``: report nothing)."""

    def __init__(self, directory: str | os.PathLike | None) -> None:
        self.directory = Path(directory) if directory else None
        self.pid = os.getpid()
        self.created = process_created(self.pid) if self.directory else None

    @classmethod
    def from_env(cls) -> WorkerStatus:
        return cls(os.environ.get(STATUS_DIR_ENV) or None)

    def report(self, state: str, step: int | None = None) -> None:
        """Write ``state`` (one of :data:`STATES`) and ``step``; unwritable: silently none
        (the run matters more than its report)."""
        if self.directory is None:
            return
        if state not in STATES:
            raise ValueError(f"worker state must be one of {STATES}, got {state!r}")
        record = {"pid": self.pid, "created": self.created,
                  "rank": int(os.environ.get("RANK", 0)), "state": state, "step": step}
        with contextlib.suppress(OSError):
            _write(self.directory, record)


@contextlib.contextmanager
def reporting() -> Iterator[WorkerStatus]:
    """Report ``running`` now and ``failed`` if the body raises (the body reports
    ``finished``/``stopped`` itself, it knows the step)."""
    status = WorkerStatus.from_env()
    status.report(RUNNING)
    try:
        yield status
    except BaseException:
        status.report(FAILED)
        raise


def read_workers(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """Every worker record under ``directory`` (files being written or unreadable are
    skipped: they are read again on the next poll)."""
    records = []
    for path in sorted(Path(directory).glob("worker_*.json")):
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(record, dict) and isinstance(record.get("pid"), int):
                records.append(record)
    return records
