"""Runs ``audio-core`` commands in one process (under torchrun or plain python) for tests/training.

``python train_worker.py PLAN.json``: PLAN is a list of jobs run in order, every rank the same::

    {"argv": ["train", "cfg.yaml", "k=v"],   # audio-core arguments
     "sigterm_at": 3,                        # rank 0 sends itself SIGTERM after step 3
     "sigterm_rank": 0,                      # ... or this rank instead
     "dump": "out.pt",                       # after fit: gathered weights + eval forward
     "result": "job.json"}                   # exit code and stderr (job.json.rankN on rank N)

A job that raises (rather than returning an exit code) ends the plan: the rest is skipped.

The test loss ``testing.nan_on_calls`` is registered: ``core.l1``, except that the calls
numbered in ``calls`` (1-based, per process) return NaN on ranks ``ranks`` (all if empty).
Not collected by pytest.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import traceback
from pathlib import Path

import torch
from torch import Tensor, nn

from audio_core.contracts.components import Loss


class NaNOnCalls(nn.Module, Loss):
    """Waveform L1 that returns NaN on the given calls (1-based) of the given ranks."""

    name = "nan_l1"

    def __init__(self, calls: list[int] | None = None, ranks: list[int] | None = None) -> None:
        super().__init__()
        self.calls, self.ranks, self.count = set(calls or ()), set(ranks or ()), 0

    def forward(self, estimate: Tensor, reference: Tensor, mask: Tensor | None = None):
        from audio_core.components.losses import WaveformL1

        self.count += 1
        out = WaveformL1()(estimate, reference, mask)
        rank = int(os.environ.get("RANK", 0))
        if self.count in self.calls and (not self.ranks or rank in self.ranks):
            out.value = out.value * float("nan")
        return out


def register_test_components() -> None:
    from audio_core.plugins import get_registry

    registry = get_registry()
    if ("loss", "testing.nan_on_calls") not in registry:
        registry.view("loss", "testing").register("nan_on_calls", NaNOnCalls)


def run_job(job: dict) -> dict:
    from audio_core import distributed
    from audio_core.cli import main
    from audio_core.engine.trainer import Trainer

    trainers: list[Trainer] = []
    original_fit, original_stop = Trainer.fit, Trainer._should_stop

    def fit(self):
        trainers.append(self)
        return original_fit(self)

    def should_stop(self):
        if job.get("sigterm_at") == self.step and distributed.rank() == job.get("sigterm_rank", 0):
            signal.raise_signal(signal.SIGTERM)  # the trainer's handler runs before return
        return original_stop(self)

    Trainer.fit, Trainer._should_stop = fit, should_stop
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            code = main(job["argv"])
    except Exception:  # reported to the test (main() ends the plan after it)
        code = "exception"
        stderr.write(traceback.format_exc())
    finally:
        Trainer.fit, Trainer._should_stop = original_fit, original_stop
        sys.stderr.write(stderr.getvalue())
    result = {"code": code, "stderr": stderr.getvalue()}
    trainer = trainers[0] if trainers else None
    if job.get("dump") and trainer is not None and code == 0:
        engine = trainer.engines[trainer.task.roles[0]]
        state = engine.full_state_dict()  # collective
        engine.eval()
        torch.manual_seed(1234)
        probe = torch.randn(2, trainer.cfg.data.channels, 1000)
        with torch.no_grad():
            forward = engine(probe).reconstruction.detach().clone()
        if distributed.is_main_process():
            torch.save({"state": state, "probe": probe, "forward": forward, "step": trainer.step,
                        "zero_stage": engine.zero_stage}, job["dump"])
    if job.get("result"):  # rank 0: RESULT, other ranks: RESULT.rankN
        rank = distributed.rank()
        Path(job["result"] + (f".rank{rank}" if rank else "")).write_text(
            json.dumps(result), encoding="utf-8")
    return result


def main() -> int:
    register_test_components()
    jobs = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    from audio_core import distributed

    for job in jobs:
        if run_job(job)["code"] == "exception":
            # collectives may be left half-done: skip the rest (no result files) and exit now
            # rather than risk a mismatched barrier; every rank fails at the same point
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    distributed.teardown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
