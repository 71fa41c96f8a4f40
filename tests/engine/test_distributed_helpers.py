"""The one "is this run distributed?" helper and the rank collectives of
``audio_core.distributed``: without a process group, in a world of one, and across
two gloo ranks (plain torch.distributed, no DeepSpeed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from audio_core import distributed

LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT")

WORKER = """
import json, math
import torch
import torch.distributed as dist
from audio_core import distributed as d

dist.init_process_group("gloo")
rank = dist.get_rank()
nan = float("nan")
finite = torch.ones(3)
out = {
    "rank": d.rank(), "world": d.world_size(), "initialized": d.is_initialized(),
    "distributed": d.is_distributed(),
    "all_finite": d.all_finite(finite, torch.zeros(2, 2)),
    # only rank 1 sees a NaN (rank 0 an inf in the second call): every rank says False
    "one_rank_nan": d.all_finite(finite, torch.tensor([nan if rank == 1 else 0.0])),
    "one_rank_inf": d.all_finite(torch.tensor([math.inf if rank == 0 else 1.0])),
    "no_tensors": d.all_finite(),
    "broadcast": d.broadcast_(torch.full((2,), float(rank + 5))).tolist(),
    "sum": d.all_reduce_sum_(torch.tensor([float(rank + 1)])).tolist(),
}
print(json.dumps(out))
dist.destroy_process_group()
"""


def launch(tmp_path, world: int) -> list[dict]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(distributed.free_port()),
               WORLD_SIZE=str(world), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script)], env={**env, "RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in range(world)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


@pytest.mark.slow
def test_two_gloo_ranks_agree(tmp_path):
    results = launch(tmp_path, 2)
    for rank, r in enumerate(results):
        assert (r["rank"], r["world"], r["initialized"], r["distributed"]) == (rank, 2, True, True)
        assert r["all_finite"] is True and r["no_tensors"] is True
        assert r["one_rank_nan"] is False and r["one_rank_inf"] is False
        assert r["broadcast"] == [5.0, 5.0]  # rank 0's values
        assert r["sum"] == [3.0]


@pytest.mark.slow
def test_a_world_of_one_is_initialised_but_not_distributed(tmp_path):
    (r,) = launch(tmp_path, 1)
    assert (r["rank"], r["world"], r["initialized"], r["distributed"]) == (0, 1, True, False)
    assert r["all_finite"] is True and r["one_rank_nan"] is True  # rank 0 has no NaN
    assert r["one_rank_inf"] is False and r["broadcast"] == [5.0, 5.0] and r["sum"] == [1.0]


def test_without_a_process_group_everything_is_local(monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")  # a launcher's variables before initialisation
    assert not distributed.is_initialized() and not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size()) == (3, 4)
    x = torch.tensor([1.0, 2.0])
    assert distributed.broadcast_(x) is x and distributed.all_reduce_sum_(x).tolist() == [1, 2]
    assert distributed.all_finite(x, torch.zeros(3)) and distributed.all_finite()
    assert not distributed.all_finite(x, torch.tensor([float("nan")]))
    assert not distributed.all_finite(torch.tensor([-float("inf")]))
    assert distributed.collective_device() == torch.device("cpu")


def test_importing_the_helpers_does_not_import_torch():
    code = ("import sys\n"
            "from audio_core import distributed as d\n"
            "print(d.rank(), d.is_distributed(), 'torch' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=60)
    assert out.stdout.split() == ["0", "False", "False"]
