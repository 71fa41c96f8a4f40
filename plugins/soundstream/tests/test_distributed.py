"""2-rank CPU runs (gloo, ZeRO-2 and ZeRO-3) of the adversarial task on the tiny preset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from filelock import FileLock

from audio_core.testing import run_ranks

WORKER = Path(__file__).with_name("dist_worker.py")

pytestmark = pytest.mark.integration


def launch(out: Path, stage: int) -> None:
    run_ranks(WORKER, out, stage, cwd=out, timeout=600)


@pytest.fixture(scope="session", params=[2, 3], ids=["zero2", "zero3"])
def result(tmp_path_factory, request):
    """What rank 0 of the 2-rank launch at this ZeRO stage wrote (one launch per stage,
    shared by pytest-xdist workers)."""
    stage, name = request.param, f"soundstream_dist_zero{request.param}"
    if not hasattr(request.config, "workerinput"):  # not a pytest-xdist worker
        out = tmp_path_factory.mktemp(name)
        launch(out, stage)
    else:
        root = tmp_path_factory.getbasetemp().parent  # common to all xdist workers
        out, done = root / name, root / f"{name}.done"
        with FileLock(str(root / f"{name}.lock")):
            if not done.exists():
                out.mkdir(exist_ok=True)
                launch(out, stage)
                done.touch()
    return {**torch.load(out / "result.pt", weights_only=True), "stage": stage}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_trains_with_the_zero_stage_on_both_engines(result):
    assert result["zero"] == (result["stage"], result["stage"])


def test_dead_code_replacement_leaves_codebooks_identical_across_ranks(result):
    rank0, rank1 = result["replaced"]
    assert sum(rank0) > 0 and rank0 == rank1  # codes were replaced, in step on both ranks
    for gathered in (result["after_4"], result["after_6"]):
        assert same(gathered[0], gathered[1])
        assert any(k.endswith("embed") for k in gathered[0])


def test_checkpoints_resume_exactly(result):
    assert len(result["checkpoints"]) >= 2  # steps 2, 4 and 6 (keep_checkpoints permitting)
    assert result["resumed_step"] == 6
    resumed, straight = result["resumed"], result["straight"]
    assert resumed.keys() == straight.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], atol=1e-6, rtol=1e-5,
                                   msg=lambda m, k=key: f"{k}: {m}")
    assert same(result["disc"][0], result["disc"][1])


def test_export_loads_and_codes(result):
    exported, resumed = result["exported"], result["resumed"]
    assert exported.keys() == resumed.keys()
    for key in resumed:
        torch.testing.assert_close(exported[key], resumed[key])
    assert result["codes_shape"] == (1, 4, -(-3000 // 32)) and result["codes_max"] < 64
    assert result["decoded_shape"] == (1, 1, 3000)
