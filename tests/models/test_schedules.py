"""Scheduled weights: values at known steps, parsing errors, and use by losses/tasks."""

from __future__ import annotations

import math

import pytest
import torch

from audio_core.config import load_config
from audio_core.contracts.components import Loss
from audio_core.errors import ConfigError
from audio_core.schedules import Schedule, as_schedule
from audio_core.tasks.base import weighted_losses


def test_linear_cosine_step_and_delay():
    lin = as_schedule({"start": 0.0, "end": 1.0, "warmup_steps": 10})
    assert [lin(s) for s in (0, 5, 10, 50)] == [0.0, 0.5, 1.0, 1.0]
    cos = as_schedule({"start": 0.0, "end": 2.0, "warmup_steps": 4, "shape": "cosine"})
    assert cos(2) == pytest.approx(1.0) and cos(1) == pytest.approx(1 - math.cos(math.pi / 4))
    step = as_schedule({"start": 1.0, "end": 0.0, "warmup_steps": 3, "shape": "step",
                        "delay_steps": 2})
    assert [step(s) for s in range(7)] == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    delayed = as_schedule({"start": 0.0, "end": 4.0, "warmup_steps": 4, "delay_steps": 10})
    assert [delayed(s) for s in (0, 10, 12, 14)] == [0.0, 0.0, 2.0, 4.0]
    assert as_schedule(0.25) == Schedule(0.25, 0.25) and as_schedule(3)(10**9) == 3.0


@pytest.mark.parametrize(("value", "needle"), [
    ({"start": 0.0}, "needs 'end'"),
    ({"start": 0, "end": 1, "shape": "exp"}, "w.shape"),
    ({"start": 0, "end": 1, "warmup": 3}, "unknown schedule key 'w.warmup'"),
    ({"start": 0, "end": 1, "warmup_steps": -1}, "w.warmup_steps"),
    ({"start": "a", "end": 1}, "w.start"),
    ("fast", "number or a schedule"),
    (True, "number or a schedule"),
    (float("nan"), "finite"),
])
def test_bad_schedules_name_the_path(value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        as_schedule(value, "w")


def test_a_bad_loss_weight_fails_config_loading():
    with pytest.raises(ConfigError, match=r"model\.losses\[0\]\.weight\.shape"):
        load_config({"model": {"losses": [{"name": "core.l1", "weight": {
            "start": 0, "end": 1, "shape": "exponential"}}]}})
    cfg = load_config({"model": {"losses": [{"name": "core.l1", "weight": {
        "start": 0, "end": 1, "warmup_steps": 10}}]}})
    assert as_schedule(cfg.model.losses[0].weight)(5) == 0.5


def test_weighted_losses_use_the_weight_at_the_step():
    class Unit(torch.nn.Module, Loss):
        name = "unit"

        def forward(self, estimate, reference, mask):
            from audio_core.models import LossOutput

            return LossOutput(torch.tensor(2.0))

    x = torch.zeros(1, 1, 4)
    ramp = as_schedule({"start": 0.0, "end": 1.0, "warmup_steps": 4})
    for step, expected in ((0, 0.0), (2, 1.0), (8, 2.0)):
        total, logs = weighted_losses([(Unit(), ramp)], x, x, None, step=step)
        assert total.item() == expected
        assert logs["weight/unit"].item() == ramp(step)
    _, logs = weighted_losses([(Unit(), 1.0)], x, x, None)
    assert "weight/unit" not in logs  # constant weights are not logged
