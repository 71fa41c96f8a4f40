"""Scheduled weights are functions of the optimizer step: a resumed run uses exactly the
weights an uninterrupted run used (a KL warm-up in the bottleneck, a loss-weight ramp)."""

from __future__ import annotations

import pytest

from audio_core.schedules import as_schedule

pytestmark = pytest.mark.integration

KL = {"start": 0.0, "end": 0.02, "warmup_steps": 6, "shape": "cosine", "delay_steps": 1}
L1 = {"start": 2.0, "end": 0.5, "warmup_steps": 5}


def _weights(helpers, run) -> dict[int, tuple[float, float]]:
    out = {}
    for record in helpers.read_metrics(run):
        m = record["metrics"]
        if "quantizer/kl_weight" in m:
            out[record["step"]] = (m["quantizer/kl_weight"], m["weight/l1"])
    return out


def test_a_schedule_is_the_same_after_a_resume(tmp_path, helpers, in_process):
    config = helpers.write_config(
        tmp_path, run={"output_dir": str(tmp_path), "name": "straight"},
        train={"max_steps": 8, "checkpoint_every": 4, "log_every": 1, "val_every": 0,
               "trackers": ["jsonl"]})
    schedule = [f"model.quantizer.params.kl_weight={_yaml(KL)}",
                f"model.losses=[{{name: core.l1, weight: {_yaml(L1)}}}]"]
    in_process(config, schedule)
    in_process(config, [*schedule, "run.name=split", "train.max_steps=4"])
    in_process(config, [*schedule, "run.name=split"], run_dir=tmp_path / "split", resume=True)
    straight, split = _weights(helpers, tmp_path / "straight"), _weights(helpers, tmp_path /
                                                                        "split")
    assert sorted(straight) == sorted(split) == list(range(1, 9))
    kl, l1 = as_schedule(KL), as_schedule(L1)
    for step in range(1, 9):  # log step k is optimizer step k - 1
        assert split[step] == straight[step]
        assert straight[step] == pytest.approx((kl(step - 1), l1(step - 1)), rel=1e-6)
    assert len({w for w, _ in straight.values()}) > 3  # the KL weight really moved


def _yaml(mapping: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in mapping.items()) + "}"
