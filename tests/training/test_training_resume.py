"""Resume exactness on 2 real CPU processes (gloo): a run stopped by SIGTERM after step 3
and resumed in new processes ends identical to the same run trained straight to step 8.

The model has a VAE bottleneck (it samples noise from the torch RNG in training), EMA on,
a warmup + cosine schedule and a shuffled synthetic dataset, so the weights, optimizer,
schedule, EMA, data position and per-rank RNG must all be restored for equality to hold.
Asserted with exact equality (``torch.equal``; JSON floats compared with ``==``).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.integration

MAX_STEPS, STOP_AT = 8, 3

def result(folder, name):
    path = folder / f"{name}.json"
    if not path.is_file():  # the worker skipped it after an earlier job raised
        return {"code": "not run", "stderr": ""}
    return json.loads(path.read_text())


def checkpoint(run, step):
    return run / "checkpoints" / f"step_{step:08d}"


def assert_tensors_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), f"{key} differs"


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    "z2_vae",
    "z3",
    "z3_vae",  # a module returning a record under ZeRO-3 (see audio_core.engine.zero3)
])
def test_resume_is_exact(resume_runs, helpers, name):
    for job, code in ((f"{name}_full", 0), (f"{name}_split", 75), (f"{name}_resumed", 0)):
        got = result(resume_runs, job)  # 75: stopped by SIGTERM, resumable
        assert got["code"] == code, f"{job} failed:\n{got['stderr'][-3000:]}"
    full, split = resume_runs / f"{name}_full", resume_runs / f"{name}_split"

    # the split run stopped at step 3 and was resumed from that checkpoint
    state3 = json.loads((checkpoint(split, STOP_AT) / "trainer_state.json").read_text())
    assert state3["step"] == STOP_AT and state3["loader"]["consumed"] == STOP_AT * 2
    full_losses, split_losses = helpers.losses_by_step(full), helpers.losses_by_step(split)
    assert sorted(full_losses) == sorted(split_losses) == list(range(1, MAX_STEPS + 1))
    # every logged loss after the stop is identical: same batches, same noise, same weights
    for step in range(STOP_AT + 1, MAX_STEPS + 1):
        assert split_losses[step] == full_losses[step], f"step {step}"
    if name.endswith("vae"):
        assert "loss/quantizer" in full_losses[MAX_STEPS]
    assert len({v["loss/total"] for v in full_losses.values()}) == MAX_STEPS  # not constant

    end_full, end_split = checkpoint(full, MAX_STEPS), checkpoint(split, MAX_STEPS)
    for file in ("model.safetensors", "ema.safetensors"):
        assert_tensors_equal(load_file(end_split / file), load_file(end_full / file))
    # the weights live in DeepSpeed's engines too: gathered after fit, they are equal
    dump_full = torch.load(resume_runs / f"{name}_full.pt", weights_only=True)
    dump_resumed = torch.load(resume_runs / f"{name}_resumed.pt", weights_only=True)
    assert dump_full["step"] == dump_resumed["step"] == MAX_STEPS
    assert_tensors_equal(dump_resumed["state"], dump_full["state"])
    expected_stage = 3 if name.startswith("z3") else 2
    assert dump_full["zero_stage"] == dump_resumed["zero_stage"] == expected_stage

    s_full = json.loads((end_full / "trainer_state.json").read_text())
    s_split = json.loads((end_split / "trainer_state.json").read_text())
    assert s_split["loader"] == s_full["loader"]  # data position
    assert s_split["loader"]["consumed"] == MAX_STEPS * 2
    assert s_split["ema_updates"] == s_full["ema_updates"] == MAX_STEPS
    assert s_split["world_size"] == 2
    assert (split / "checkpoints" / "latest").read_text().strip() == end_split.name


@pytest.mark.slow
def test_rng_state_matters(resume_runs, helpers):
    """Control: resumed from the same checkpoint without its per-rank RNG files, the VAE
    draws different noise and the losses after the stop differ (so the test above is
    sensitive to RNG restoration). The resume says so: it is not silent."""
    got = result(resume_runs, "z2_vae_norng")
    assert got["code"] == 0, got["stderr"][-3000:]
    assert "rank_00000.pt is missing" in got["stderr"]
    assert "will NOT continue exactly" in got["stderr"]
    full = helpers.losses_by_step(resume_runs / "z2_vae_full")
    control = helpers.losses_by_step(resume_runs / "z2_vae_norng")
    assert control[STOP_AT] == full[STOP_AT]
    assert control[STOP_AT + 1]["loss/total"] != full[STOP_AT + 1]["loss/total"]


@pytest.mark.slow
def test_signal_on_one_rank_stops_both(resume_runs):
    """In the z3 split run only rank 1 got SIGTERM; both ranks saved step 3 and stopped."""
    split = resume_runs / "z3_split"
    assert result(resume_runs, "z3_split")["code"] == 75
    assert "received signal" in result(resume_runs, "z3_split")["stderr"]
    ckpt = checkpoint(split, STOP_AT)
    assert sorted(p.name for p in (ckpt / "rng").iterdir()) == ["rank_00000.pt", "rank_00001.pt"]
    shards = sorted(p.name for p in (ckpt / "generator" / "ckpt").iterdir())
    assert shards == [f"zero_pp_rank_{r}_mp_rank_00_{kind}_states.pt"
                      for r in (0, 1) for kind in ("model", "optim")]


def test_resume_is_exact_in_one_process_whatever_trackers_draw(tmp_path, helpers, in_process,
                                                               monkeypatch):
    """A world of one, in this process: 3 steps + resume to 6 equal 6 straight steps, even
    when building a tracker draws from torch/numpy/python RNGs (a plugin backend may)."""
    from audio_core.tracking import factory
    from audio_core.tracking.jsonl import JsonlTracker

    def greedy_backend(run_dir, opts):
        torch.rand(3), np.random.rand(3), random.random()
        return JsonlTracker(run_dir, filename="greedy.jsonl")

    monkeypatch.setitem(factory.BACKENDS, "greedy", greedy_backend)
    config = helpers.write_config(
        tmp_path, run={"output_dir": str(tmp_path)},
        train={**helpers.TINY["train"], "max_steps": 6, "checkpoint_every": 0,
               "trackers": ["jsonl", "greedy"], "optimizer": {"lr": 2e-3, "schedule": "constant"}})
    in_process(config, ["run.name=full"])
    in_process(config, ["run.name=split", "train.max_steps=3"])
    in_process(config, ["run.name=split"], run_dir=tmp_path / "split", resume=True)
    full, split = (helpers.losses_by_step(tmp_path / n) for n in ("full", "split"))
    assert sorted(split) == list(range(1, 7)) and "loss/quantizer" in split[6]
    assert all(split[step] == full[step] for step in range(4, 7))
    end = "checkpoints/step_00000006"
    for file in ("model.safetensors", "ema.safetensors"):
        assert_tensors_equal(load_file(tmp_path / "split" / end / file),
                             load_file(tmp_path / "full" / end / file))
