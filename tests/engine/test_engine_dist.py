"""Engines on 2 real CPU processes (gloo) against a single-process PyTorch reference.

Each launch runs several scenarios of ``dist_worker.py`` in one process group (process
start-up and DeepSpeed import dominate the cost); rank 0 writes ``<scenario>.pt`` with the
DeepSpeed result and the reference. Launchers: ``torch.distributed.run``, the ``deepspeed``
launcher and plain ``python`` (a world of one). ``TORCH_EXTENSIONS_DIR`` is passed through
so the JIT-built comm op is reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from audio_core.distributed import free_port

WORKER = Path(__file__).with_name("dist_worker.py")
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT")
TIMEOUT = 400  # the JIT-built ops are built beforehand (tests/conftest.py: deepspeed_ops)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("deepspeed_ops")]


def launch(prefix: list[str], out: Path, *scenarios: str) -> dict[str, dict]:
    """Run the worker under ``prefix``; the scenarios' results loaded from ``out``."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([*prefix, str(WORKER), str(out), *scenarios], env=env, cwd=out,
                          capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(f"worker failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-6000:]}")
    return {name: torch.load(out / f"{name}.pt", weights_only=True) for name in scenarios}


def torchrun(nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}"]


def assert_states_close(actual: dict, expected: dict, atol: float = 1e-6, rtol: float = 1e-5):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(actual[key].float(), value.float(), atol=atol, rtol=rtol,
                                   msg=lambda m, k=key: f"{k}: {m}")


MAIN_SCENARIOS = ("zero", "accum", "checkpoint", "gan", "precision")


@pytest.fixture(scope="module")
def results(tmp_path_factory, worker_id, deepspeed_ops) -> dict[str, dict]:
    """One 2-rank launch per test session, shared by pytest-xdist workers (file lock)."""
    if worker_id == "master":
        return launch(torchrun(2), tmp_path_factory.mktemp("dist"), *MAIN_SCENARIOS)
    root = tmp_path_factory.getbasetemp().parent  # this session's, common to all workers
    out, done = root / "engine_dist", root / "engine_dist.done"
    with FileLock(str(root / "engine_dist.lock")):
        if not done.exists():
            out.mkdir(exist_ok=True)
            launch(torchrun(2), out, *MAIN_SCENARIOS)
            done.touch()
    return {name: torch.load(out / f"{name}.pt", weights_only=True) for name in MAIN_SCENARIOS}


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_zero_stages_match_single_process(results, stage):
    """N steps of 2 ranks x micro 2 equal one process on the global batch of 4."""
    got, ref = results["zero"]["ds"][stage], results["zero"]["ref"]
    assert got["ds_config"]["zero_optimization"]["stage"] == stage
    assert got["ds_config"]["train_batch_size"] == 4
    assert got["applied"] == [True] * 3
    assert_states_close(got["state"], ref["state"])


def test_gradient_clipping_was_active(results):
    """The reference clipped (norm > 0.05) every step, and every stage matched it."""
    assert all(norm > 0.05 * 10 for norm in results["zero"]["ref"]["norms"])


def test_warmup_schedule(results):
    """warmup 2, cosine to max_steps 4: LRs used by steps 0, 1, 2 are lr/3, 2lr/3, lr."""
    expected = [1e-2 / 3, 2e-2 / 3, 1e-2]
    assert results["zero"]["ref"]["lrs"] == pytest.approx(expected)
    for stage in (0, 1, 2, 3):
        assert results["zero"]["ds"][stage]["lrs"] == pytest.approx(expected)


@pytest.mark.parametrize("stage", [0, 2])
def test_accumulation_equals_larger_micro_batch(results, stage):
    acc = results["accum"]["ds"]
    one_by_two, two_by_one = acc[(stage, 1, 2)], acc[(stage, 2, 1)]
    assert one_by_two["applied"] == [False, True] * 3
    assert two_by_one["applied"] == [True] * 3
    assert_states_close(one_by_two["state"], two_by_one["state"])
    assert_states_close(one_by_two["state"], results["accum"]["ref"]["state"])


@pytest.mark.parametrize("stage", [1, 3])
def test_checkpoint_resume_is_exact(results, stage):
    got = results["checkpoint"]["ds"][stage]
    assert got["client"] == {"step": 2}
    assert got["steps"] == 3
    assert got["resumed"]["lrs"] == got["cont"]["lrs"]  # scheduler state restored
    assert_states_close(got["resumed"]["state"], got["cont"]["state"], atol=0, rtol=0)
    assert "generator/latest" in got["files"]
    assert all(f.startswith("generator/") for f in got["files"])


def test_two_engines_gan_step(results):
    """ZeRO-3 generator + ZeRO-1 discriminator, D frozen in G's step, vs plain PyTorch."""
    gan = results["gan"]
    assert gan["ds"]["stages"] == (3, 1)
    assert_states_close(gan["ds"]["g"], gan["ref"]["g"])
    assert_states_close(gan["ds"]["d"], gan["ref"]["d"])


@pytest.mark.parametrize("stage", [0, 2])
def test_bf16_trains_close_to_fp32(results, stage):
    got, ref = results["precision"]["ds"][stage], results["precision"]["ref"]
    assert got["dtype"] == "torch.bfloat16" and got["param_dtype"] == "torch.bfloat16"
    assert_states_close(got["state"], ref["state"], atol=5e-2, rtol=0)


def test_fp16_is_refused_with_a_config_error_exactly_when_unsupported(results):
    from deepspeed.accelerator import get_accelerator

    message = results["precision"]["ds"]["fp16"]
    if get_accelerator().is_fp16_supported():  # e.g. a CPU whose oneDNN has fp16
        assert message == "supported"
    else:
        assert "fp16 is not supported on this cpu device" in message
        assert "train.precision" in message


def test_deepspeed_launcher(tmp_path):
    """``deepspeed --num_gpus 2`` on CPU (the CPU accelerator takes --num_gpus as ranks)."""
    runner = shutil.which("deepspeed", path=str(Path(sys.executable).parent))
    assert runner, "the deepspeed launcher script is not installed next to python"
    got = launch([runner, "--num_gpus", "2", "--master_port", str(free_port())], tmp_path,
                 "launcher")["launcher"]
    assert got["world"] == 2 and got["ds"]["env"]["WORLD_SIZE"] == "2"
    assert_states_close(got["ds"]["state"], got["ref"]["state"])


def test_plain_python_is_a_world_of_one(tmp_path):
    got = launch([sys.executable], tmp_path, "launcher")["launcher"]
    assert got["world"] == 1
    assert got["ds"]["env"] == {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
    assert_states_close(got["ds"]["state"], got["ref"]["state"])


@pytest.mark.slow
def test_zero3_offload_preset(tmp_path):
    """DeepSpeedCPUAdam with params and optimizer offloaded (cpu_adam is built beforehand by
    the deepspeed_ops fixture, outside this test's time limit)."""
    got = launch(torchrun(2), tmp_path, "offload")["offload"]
    assert got["ds"]["optimizer"] == "DeepSpeedCPUAdam"
    assert_states_close(got["ds"]["state"], got["ref"]["state"])
