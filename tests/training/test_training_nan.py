"""Non-finite losses: the micro-batch is skipped (``nan_skipped`` in metrics.jsonl) and
training goes on; ``train.nan_tolerance`` of them in a row stop the run with a
``TrainingStopped`` naming the last good checkpoint. On 2 ranks a NaN seen by one rank only
makes both skip (the decision is all-reduced) and nothing hangs.

The loss ``testing.nan_on_calls`` is L1 that returns NaN on the given (1-based) calls; it is
registered in a copy of the registry here and in the worker of the 2-rank runs.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from audio_core.contracts.components import Loss
from audio_core.engine.trainer import TrainingStopped

pytestmark = pytest.mark.integration


class NaNOnCalls(nn.Module, Loss):
    name = "nan_l1"

    def __init__(self, calls: list[int] | None = None, ranks: list[int] | None = None) -> None:
        super().__init__()
        self.calls, self.count = set(calls or ()), 0

    def forward(self, estimate, reference, mask=None):
        from audio_core.components.losses import WaveformL1

        self.count += 1
        out = WaveformL1()(estimate, reference, mask)
        if self.count in self.calls:
            out.value = out.value * float("nan")
        return out


@pytest.fixture
def registry():
    """A copy of the process registry plus the test loss (the global one stays clean)."""
    from audio_core.plugins import get_registry

    copy = get_registry().copy()
    copy.view("loss", "testing").register("nan_on_calls", NaNOnCalls)
    return copy


def nan_config(helpers, folder, calls, tolerance, ranks=None, max_steps=6):
    loss = {"name": "testing.nan_on_calls", "params": {"calls": calls, "ranks": ranks or []}}
    return helpers.write_config(
        folder, run={"output_dir": str(folder)},
        model={**helpers.TINY["model"], "losses": [loss]},
        train={**helpers.TINY["train"], "max_steps": max_steps, "checkpoint_every": 2,
               "nan_tolerance": tolerance})


def skipped_records(run):
    from_file = (run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in from_file]
    return [(r["step"], r["metrics"]["nan_skipped"]) for r in records
            if "nan_skipped" in r["metrics"]]


def assert_finished_after_skips(run, steps=6):
    """Two skipped micro-batches (calls 3 and 5: in steps 3 and 4), every step trained."""
    assert skipped_records(run) == [(3, 1.0), (4, 1.0)]
    logged = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "loss/total" in rec["metrics"]:
            logged[rec["step"]] = rec["metrics"]["loss/total"]
    assert sorted(logged) == list(range(1, steps + 1))
    assert all(v is not None and math.isfinite(v) for v in logged.values())
    state = json.loads((run / "checkpoints" / f"step_{steps:08d}" / "trainer_state.json")
                       .read_text())
    assert state["loader"]["consumed"] == (steps + 2) * 2  # the skipped batches were used up


def test_isolated_nans_are_skipped(tmp_path, helpers, in_process, registry):
    config = nan_config(helpers, tmp_path, calls=[3, 5], tolerance=2)
    trainer = in_process(config, registry=registry)
    assert trainer.step == 6
    assert_finished_after_skips(tmp_path / "tiny")
    with trainer.engines["generator"].gathered() as module:
        assert all(torch.isfinite(p).all() for p in module.parameters())


def test_consecutive_nans_stop_the_run(tmp_path, helpers, in_process, registry):
    config = nan_config(helpers, tmp_path, calls=[4, 5, 6], tolerance=3, max_steps=10)
    last_good = tmp_path / "tiny" / "checkpoints" / "step_00000002"
    with pytest.raises(TrainingStopped) as info:
        in_process(config, registry=registry)
    message = str(info.value)
    assert "3 non-finite losses in a row at step 4" in message
    assert f"last good checkpoint: {last_good}" in message
    assert f"--resume {tmp_path / 'tiny'}" in message
    assert skipped_records(tmp_path / "tiny") == [(4, 1.0), (4, 2.0), (4, 3.0)]
    assert in_process.last.step == 3


@pytest.mark.slow
def test_nan_on_one_rank_of_two(tmp_path, helpers):
    """Rank 1 alone sees the NaNs (ZeRO-2 with VAE, ZeRO-3): both ranks skip, finish or
    stop together, and the launch returns (a hang would hit the timeout)."""
    skip = nan_config(helpers, tmp_path, calls=[3, 5], tolerance=2, ranks=[1])
    (tmp_path / "stop").mkdir()
    stop = nan_config(helpers, tmp_path / "stop", calls=[4, 5, 6], tolerance=3, ranks=[1],
                      max_steps=10)
    jobs = [
        {"argv": ["train", str(skip), "run.name=z2", "deepspeed.zero_stage=2"],
         "result": "z2.json"},
        {"argv": ["train", str(skip), "run.name=z3", *helpers.ZERO3, *helpers.NO_VAE],
         "result": "z3.json"},
        {"argv": ["train", str(stop), "run.name=stop", "deepspeed.zero_stage=2"],
         "result": "stop.json"},
    ]
    helpers.run_worker(jobs, tmp_path)
    for name in ("z2", "z3"):
        for suffix in ("", ".rank1"):
            got = json.loads((tmp_path / f"{name}.json{suffix}").read_text())
            assert got["code"] == 0, got["stderr"][-3000:]
        assert_finished_after_skips(tmp_path / name)
    for suffix in ("", ".rank1"):
        got = json.loads((tmp_path / f"stop.json{suffix}").read_text())
        assert got["code"] == 1
        assert "non-finite losses in a row at step 4" in got["stderr"]
        assert str(tmp_path / "stop" / "stop" / "checkpoints" / "step_00000002") in got["stderr"]
