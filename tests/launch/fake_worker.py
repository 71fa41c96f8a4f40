"""A stand-in for one ``audio-core train`` rank, without torch (not collected by pytest).

``python fake_worker.py OUT STEPS SAVE_SECONDS [FAIL_AT]``: reports itself as the real rank
does (:mod:`audio_core.launch.status`), "trains" (writes its step to ``OUT/rank<R>.step``
every 50 ms) and on SIGTERM/SIGINT "saves a checkpoint" for SAVE_SECONDS, writes
``OUT/rank<R>.ckpt``, reports ``stopped`` and exits 0, as a real rank under
``audio-core launch`` does. With FAIL_AT it raises at that step (reports ``failed``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from audio_core.launch.status import FINISHED, STOPPED, reporting


def main() -> int:
    out, steps, save_s = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    fail_at = int(sys.argv[4]) if len(sys.argv) > 4 else None
    rank = os.environ.get("RANK", "0")
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stop.append(signum))
    with reporting() as status:
        step = 0
        while step < steps and not stop:
            step += 1
            if step == fail_at:
                raise RuntimeError(f"rank {rank} fails at step {step}")
            (out / f"rank{rank}.step").write_text(str(step))
            time.sleep(0.05)
        if stop:
            time.sleep(save_s)
            (out / f"rank{rank}.ckpt").write_text(f"{step} {stop[0]}")
            status.report(STOPPED, step)
        else:
            status.report(FINISHED, step)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
