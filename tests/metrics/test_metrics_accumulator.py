"""MetricAccumulator: weighted means locally and summed across gloo ranks."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import pytest
import torch

from audio_core.metrics import MetricAccumulator


def test_weighted_mean():
    acc = MetricAccumulator()
    acc.update({"si_sdr": 10.0, "l1": 0.5}, weight=2)
    acc.update({"si_sdr": torch.tensor(4.0), "l1": 0.2}, weight=4)
    acc.update({"mel": torch.tensor([1.0, 2.0, 6.0])})  # per-item values
    out = acc.compute()
    assert out["si_sdr"] == pytest.approx((10 * 2 + 4 * 4) / 6)
    assert out["l1"] == pytest.approx((0.5 * 2 + 0.2 * 4) / 6)
    assert out["mel"] == pytest.approx(3.0)
    assert acc.compute() == out  # compute does not consume state
    acc.reset()
    assert len(acc) == 0 and acc.compute() == {}


def test_zero_weight_is_nan():
    acc = MetricAccumulator()
    acc.update({"x": 1.0}, weight=0)
    assert math.isnan(acc.compute()["x"])


WORKER = """
import json, os, sys
import torch.distributed as dist
from audio_core.metrics import MetricAccumulator

dist.init_process_group("gloo")
rank = dist.get_rank()
acc = MetricAccumulator()
if rank == 0:
    acc.update({"a": 1.0}, weight=1)
else:
    acc.update({"a": 4.0, "b": 2.0}, weight=3)  # rank 1 also saw metric "b"
print(json.dumps([acc.compute(), acc.compute(sync=False)]))
dist.destroy_process_group()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_all_reduce_across_two_gloo_ranks(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, str(script)], env={**env, "RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    for synced, _ in results:
        assert synced["a"] == pytest.approx((1 * 1 + 4 * 3) / 4)
        assert synced["b"] == pytest.approx(2.0)
    assert results[0][1] == {"a": 1.0}
