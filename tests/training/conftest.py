"""Fixtures of the training-loop acceptance tests.

Real processes: ``audio-core`` (the console script), ``torch.distributed.run`` and the
``deepspeed`` launcher run ``train_worker.py`` or the CLI on CPU with gloo. Launcher variables
are removed from the child environment (an in-process run sets them in this process), and
``TORCH_EXTENSIONS_DIR`` passes through so DeepSpeed's JIT-built comm op is reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).parent
WORKER = HERE / "train_worker.py"
BIN = Path(sys.executable).parent
LAUNCH_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
              "MASTER_PORT", "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")
TIMEOUT = 400  # the JIT-built comm op is built beforehand (tests/conftest.py: deepspeed_ops)

#: A tiny VAE autoencoder on synthetic audio: 0.25 s segments, micro-batch 2, jsonl only.
TINY: dict[str, Any] = {
    "extends": "demo",
    "run": {"name": "tiny", "seed": 0},
    "data": {"segment_seconds": 0.25, "batch_size": 2,
             "train": {"name": "core.synthetic", "params": {"num_items": 64}}, "val": None},
    "model": {
        "encoder": {"name": "core.conv", "params": {"dim": 8, "width": 4, "ratios": [4, 4]}},
        "quantizer": {"name": "core.vae", "params": {"kl_weight": 0.01}},
        "decoder": {"name": "core.conv", "params": {"dim": 4, "width": 4, "ratios": [4, 4]}},
        "losses": [{"name": "core.l1", "weight": 1.0}],
    },
    "train": {"max_steps": 8, "optimizer": {"lr": 2e-3, "warmup_steps": 2, "schedule": "cosine"},
              "log_every": 1, "val_every": 0, "checkpoint_every": 4, "ema_decay": 0.9,
              "trackers": ["jsonl"]},
}

#: Overrides: no bottleneck (for ZeRO-3, see test_training_resume.py).
NO_VAE = ["model.quantizer=null", "model.encoder.params.dim=4"]
#: Overrides: ZeRO-3 that partitions even these tiny tensors.
ZERO3 = ["deepspeed.zero_stage=3",
         "deepspeed.zero_optimization.stage3_param_persistence_threshold=0"]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_ENV}
    env["OMP_NUM_THREADS"] = "1"
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def torchrun(nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}"]


def write_config(directory: Path, name: str = "tiny.yaml", **sections: Any) -> Path:
    """``TINY`` with ``sections`` merged in one level deep, written to ``directory/name``."""
    data = json.loads(json.dumps(TINY))
    for key, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    path = directory / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_process(argv: list[str], cwd: Path, timeout: float = TIMEOUT,
                check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=child_env(), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, argv[:6]))} ... failed ({proc.returncode}):\n"
                    f"{(proc.stdout + proc.stderr)[-6000:]}")
    return proc


def run_worker(jobs: list[dict], cwd: Path, nproc: int = 2,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run ``train_worker.py`` over ``jobs`` under torchrun (``nproc`` ranks) or python (1)."""
    plan = cwd / f"plan_{len(list(cwd.glob('plan_*.json')))}.json"
    plan.write_text(json.dumps(jobs), encoding="utf-8")
    prefix = torchrun(nproc) if nproc > 1 else [sys.executable]
    return run_process([*prefix, str(WORKER), str(plan)], cwd, check=check)


def read_metrics(run_dir: Path) -> list[dict]:
    """Records of ``run_dir/metrics.jsonl``."""
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def losses_by_step(run_dir: Path) -> dict[int, dict[str, float]]:
    """``loss/*`` values of each logged training step (later records win)."""
    out: dict[int, dict[str, float]] = {}
    for rec in read_metrics(run_dir):
        losses = {k: v for k, v in rec["metrics"].items() if k.startswith("loss/")}
        if losses:
            out[rec["step"]] = losses
    return out


@pytest.fixture(autouse=True)
def _prebuilt_ops(deepspeed_ops) -> None:
    """Every test here may start a process group: build DeepSpeed's ops before its clock."""


@pytest.fixture
def helpers():
    """The module-level helpers, for test files (they cannot import this conftest)."""
    import types

    return types.SimpleNamespace(
        TINY=TINY, NO_VAE=NO_VAE, ZERO3=ZERO3, BIN=BIN, child_env=child_env,
        torchrun=torchrun, write_config=write_config, run_process=run_process,
        run_worker=run_worker, read_metrics=read_metrics, losses_by_step=losses_by_step)


@pytest.fixture
def in_process() -> Iterator[Callable[..., Any]]:
    """Run a Trainer in this process (a world of one), tearing the process group down after.

    Yields ``train(cfg_path, overrides, **trainer_kwargs) -> Trainer`` (fit already run, or
    raised). The environment variables an in-process run sets are restored afterwards.
    """
    from audio_core import distributed

    saved = dict(os.environ)
    os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                          str(Path.home() / ".cache" / "torch_extensions"))

    def train(config: Path | dict, overrides: list[str] = (), **kwargs: Any):
        from audio_core.config import load_config
        from audio_core.engine.trainer import Trainer

        cfg = load_config(config, list(overrides), registry=kwargs.get("registry"))
        trainer = Trainer(cfg, **kwargs)
        train.last = trainer
        trainer.fit()
        return trainer

    train.last = None
    try:
        yield train
    finally:
        distributed.teardown()
        os.environ.clear()
        os.environ.update(saved)


def shared_launch(tmp_path_factory, worker_id: str, name: str,
                  launch: Callable[[Path], None]) -> Path:
    """Run ``launch(folder)`` once per test session, shared by xdist workers (file lock)."""
    from filelock import FileLock

    if worker_id == "master":
        root = tmp_path_factory.getbasetemp()
    else:
        root = tmp_path_factory.getbasetemp().parent  # this session's, common to all workers
    out, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
    with FileLock(str(root / f"{name}.lock")):
        if failed.exists():
            pytest.fail(f"shared launch '{name}' failed earlier:\n{failed.read_text()}")
        if not done.exists():
            out.mkdir(exist_ok=True)
            try:
                launch(out)
            except BaseException as exc:
                failed.write_text(str(exc)[-6000:])
                raise
            done.touch()
    return out


#: Runs of the shared 2-rank launch: name -> (extra overrides, rank that gets SIGTERM).
RESUME_RUNS: dict[str, tuple[list[str], int]] = {
    "z2_vae": (["deepspeed.zero_stage=2"], 0),
    "z3": ([*ZERO3, *NO_VAE], 1),  # the signal reaches rank 1 only
    "z3_vae": (ZERO3, 0),
}
STOP_AT = 3  # the split runs stop (SIGTERM) after this step, then resume to max_steps 8


def _resume_launch(out: Path) -> None:
    """Launch A: every run straight (``<name>_full``) and stopped by SIGTERM after step 3
    (``<name>_split``); launch B (new processes): ``--resume`` every split run, plus a
    control resumed from a copy of z2_vae's checkpoint without its RNG files."""
    import shutil

    config = write_config(out)
    jobs_a, jobs_b = [], []
    for name, (overrides, signal_rank) in RESUME_RUNS.items():
        base = ["train", str(config), f"run.output_dir={out}", *overrides]
        jobs_a.append({"argv": [*base, f"run.name={name}_full"], "dump": f"{name}_full.pt",
                       "result": f"{name}_full.json"})
        jobs_a.append({"argv": [*base, f"run.name={name}_split"], "sigterm_at": STOP_AT,
                       "sigterm_rank": signal_rank, "result": f"{name}_split.json"})
        jobs_b.append({"argv": ["train", "--resume", str(out / f"{name}_split")],
                       "dump": f"{name}_resumed.pt", "result": f"{name}_resumed.json"})
    # ZeRO-3 + VAE last: it may fail inside DeepSpeed (see test_training_resume.py)
    run_worker(jobs_a, out)
    split = out / "z2_vae_split"
    control = out / "z2_vae_norng"
    if (split / "checkpoints").is_dir():
        shutil.copytree(split, control)
        for rng in control.glob("checkpoints/step_*/rng"):
            shutil.rmtree(rng)
        jobs_b.insert(1, {"argv": ["train", "--resume", str(control)],
                          "result": "z2_vae_norng.json"})
    run_worker(jobs_b, out)


@pytest.fixture(scope="session")
def resume_runs(tmp_path_factory, worker_id) -> Path:
    """The folder of the shared resume launches (see :func:`_resume_launch`)."""
    return shared_launch(tmp_path_factory, worker_id, "training_resume", _resume_launch)
