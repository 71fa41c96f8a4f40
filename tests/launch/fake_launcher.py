"""A stand-in for a launcher such as ``deepspeed.launcher.launch`` (not collected by pytest).

``python fake_launcher.py OUT NPROC WORKER_ARGS...``: writes its pid to ``OUT/launcher.pid``,
starts NPROC ``fake_worker.py`` ranks (``RANK`` set) and exits with the highest of their
statuses. On SIGTERM it behaves as the worst launcher would: it exits 1 at once, leaving its
workers behind (orphaned, still running).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("fake_worker.py")


def main() -> int:
    out, nproc, rest = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    (out / "launcher.pid").write_text(str(os.getpid()))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(1))
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(out), *rest],
                              env={**os.environ, "RANK": str(rank)}) for rank in range(nproc)]
    return max(p.wait() for p in procs)


if __name__ == "__main__":
    raise SystemExit(main())
