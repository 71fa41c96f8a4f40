"""``audio-core launch``: run a launcher so that a stop signal ends in a complete checkpoint.

Why: a scheduler stops a job by sending SIGTERM to the process the job script waits on.
When that is a launcher, the checkpoint is not safe:

- the ``deepspeed`` runner has no handler on a single node (nor with ``--no_ssh``): it dies
  at once, and its child ``deepspeed.launcher.launch`` and the workers keep training,
  orphaned; when the signal reaches ``deepspeed.launcher.launch`` itself, it sends SIGTERM to
  the workers, kills them 30 s later and exits 1;
- ``torchrun`` forwards the signal, kills the workers after its 30 s shutdown timeout and
  exits with an error; a worker exiting with a non-zero status (75, "stopped") counts as a
  failure (and with ``--max-restarts`` is restarted);

so the job script can go on (and requeue) before the checkpoint is on disk.

:class:`Supervisor` starts the launcher command in a session of its own (signals meant for
the job reach the supervisor only), tells each ``audio-core train`` process below it where
to report itself (:mod:`audio_core.launch.status`), and on SIGTERM/SIGINT/SIGHUP sends the
stop signal straight to those training processes, past the launchers. Every rank saves a
checkpoint at its next step boundary (the save is collective: a rank returns from it only
once the checkpoint is complete) and exits 0, so no launcher mistakes the stop for a
failure. The supervisor returns only when the launcher *and* every training process have
exited, with status 75 (:data:`~audio_core.engine.run_dir.EXIT_STOPPED`) when the run was
stopped after saving, 0 when it finished, and the launcher's status on failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, TextIO

from audio_core.engine.run_dir import EXIT_STOPPED
from audio_core.launch.status import (
    FAILED,
    FINISHED,
    RUNNING,
    STATUS_DIR_ENV,
    STOPPED,
    process_created,
    read_workers,
)

#: Signals that ask the run to stop, and the one forwarded for each (the trainer handles
#: SIGTERM and SIGINT; a hang-up stops the run like SIGTERM).
STOP_SIGNALS = {signal.SIGTERM: signal.SIGTERM, signal.SIGINT: signal.SIGINT,
                signal.SIGHUP: signal.SIGTERM}


def _die_with_parent() -> None:
    """In the launcher process (Linux): receive SIGTERM when the supervisor dies, so that
    killing the supervisor with SIGKILL does not leave an orphaned run behind."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def _alive(record: dict[str, Any]) -> bool:
    """True while the process of a worker record runs (not a new process with its pid)."""
    import psutil

    created = process_created(record["pid"])
    if created is None:
        return False
    if isinstance(record.get("created"), (int, float)) and abs(created - record["created"]) > 1:
        return False
    with contextlib.suppress(psutil.Error):
        return psutil.Process(record["pid"]).status() != psutil.STATUS_ZOMBIE
    return False


def exit_status(returncode: int) -> int:
    """A ``Popen.returncode`` as a shell reports it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


class Supervisor:
    """Runs ``command`` (a launcher line, or ``audio-core train`` itself) to completion;
    see the module docstring. ``grace``: seconds to wait for the training processes after a
    stop signal before killing them (``None``: as long as they take)."""

    def __init__(self, command: Sequence[str], *, grace: float | None = None,
                 poll_s: float = 0.2, stream: TextIO | None = None) -> None:
        if not command:
            raise ValueError("audio-core launch needs a command to run")
        self.command, self.grace, self.poll_s = list(command), grace, poll_s
        self.stream = stream if stream is not None else sys.stderr
        self.stop_signal: int | None = None
        self._signalled: set[int] = set()

    def _say(self, message: str) -> None:
        print(f"audio-core launch: {message}", file=self.stream, flush=True)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        else:
            self._say(f"received {signal.Signals(signum).name} again: still waiting for the "
                      f"training processes to save their checkpoint")

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> int:
        """Start the command, supervise it, return the exit status (see the module)."""
        status_dir = tempfile.mkdtemp(prefix="audio-core-launch-")
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            try:
                child = subprocess.Popen(
                    self.command, env={**os.environ, STATUS_DIR_ENV: status_dir},
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            except OSError as exc:
                self._say(f"cannot run {self.command[0]!r}: {exc.strerror or exc}")
                return 127
            workers = self._wait(child, status_dir)
            return self._decide(exit_status(child.returncode), workers)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(status_dir, ignore_errors=True)

    def _wait(self, child: subprocess.Popen, status_dir: str) -> list[dict[str, Any]]:
        """Until the launcher and every training process have exited; returns the last
        worker records."""
        deadline: float | None = None
        killed = False
        while True:
            workers = read_workers(status_dir)
            alive = [w for w in workers if _alive(w)]
            if self.stop_signal is not None:
                if deadline is None and self.grace is not None:
                    deadline = time.monotonic() + self.grace
                self._forward(child, workers, alive)
                if deadline is not None and not killed and time.monotonic() > deadline:
                    self._kill(child, alive)
                    killed = True
            if child.poll() is not None and not alive:
                return read_workers(status_dir)
            time.sleep(self.poll_s)

    def _forward(self, child: subprocess.Popen, workers: list[dict[str, Any]],
                 alive: list[dict[str, Any]]) -> None:
        """The stop signal to each training process not yet signalled; to the launcher's
        process group while no training process has reported (nothing to save yet)."""
        forwarded = STOP_SIGNALS.get(signal.Signals(self.stop_signal), signal.SIGTERM)
        if not workers:
            if child.pid not in self._signalled and child.poll() is None:
                self._signalled.add(child.pid)
                self._say(f"received {signal.Signals(self.stop_signal).name} before any "
                          f"training process started: stopping {self.command[0]}")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, forwarded)
            return
        fresh = [w for w in alive
                 if w.get("state") == RUNNING and w["pid"] not in self._signalled]
        for record in fresh:
            self._signalled.add(record["pid"])
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(record["pid"], forwarded)
        if fresh:
            self._say(f"received {signal.Signals(self.stop_signal).name}: sent "
                      f"{forwarded.name} to {len(fresh)} training process(es); waiting for "
                      f"their checkpoint")

    def _kill(self, child: subprocess.Popen, alive: list[dict[str, Any]]) -> None:
        self._say(f"the training processes did not stop within --grace {self.grace:g} s: "
                  f"killing them; the run resumes from its newest complete checkpoint")
        for record in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(record["pid"], signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)

    def _decide(self, returncode: int, workers: list[dict[str, Any]]) -> int:
        states = [w.get("state") for w in workers]
        steps = sorted({w["step"] for w in workers
                        if w.get("state") == STOPPED and isinstance(w.get("step"), int)})
        if FAILED in states:
            return returncode if returncode not in (0, EXIT_STOPPED) else 1
        if STOPPED in states:
            where = f" at step {steps[-1]}" if steps else ""
            self._say(f"run stopped{where}: its checkpoint is complete and every training "
                      f"process has exited; exit status {EXIT_STOPPED} (resume with "
                      f"--resume RUN_DIR or --resume auto)")
            return EXIT_STOPPED
        if self.stop_signal is not None and FINISHED not in states:
            self._say(f"stopped before training began; exit status {EXIT_STOPPED} (nothing "
                      f"to save: a resume starts from the newest complete checkpoint, if any)")
            return EXIT_STOPPED
        return returncode
