"""EMA against its closed form, in this process (a world of one, tiny model).

With decay ``d``, initial parameters ``p0`` and parameters ``p_i`` after applied optimizer
step ``i``, after ``k`` steps ``ema = d^k p0 + sum_i (1 - d) d^(k-i) p_i``. The parameters
are recorded where ``EMA.update`` reads them; the sum is evaluated in float64.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from audio_core.engine.ema import EMA

pytestmark = pytest.mark.integration

DECAY = 0.8


@pytest.fixture
def recorder(monkeypatch):
    """Records p0 (at EMA creation) and the parameters each ``update`` folds in."""
    seen: dict[str, list] = {"init": [], "updates": []}
    init, update = EMA.__init__, EMA.update

    def recording_init(self, engine, decay):
        init(self, engine, decay)
        seen["init"].append({k: v.clone() for k, v in self.shadow.items()})

    def recording_update(self):
        with self.engine.gathered() as module:
            seen["updates"].append({k: p.detach().float().clone()
                                    for k, p in module.named_parameters()})
        update(self)

    monkeypatch.setattr(EMA, "__init__", recording_init)
    monkeypatch.setattr(EMA, "update", recording_update)
    return seen


def closed_form(p0: dict, params: list[dict], decay: float) -> dict:
    k = len(params)
    out = {}
    for name, start in p0.items():
        value = decay ** k * start.double()
        for i, p in enumerate(params, start=1):
            value = value + (1 - decay) * decay ** (k - i) * p[name].double()
        out[name] = value
    return out


def assert_matches(actual: dict, expected: dict):
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name].double(), expected[name], rtol=1e-6, atol=1e-7,
                                   msg=lambda m, n=name: f"{n}: {m}")


def test_ema_is_the_closed_form_and_survives_resume(tmp_path, helpers, in_process, recorder):
    # grad_accum 2: the EMA folds in once per applied optimizer step, not per micro-batch
    config = helpers.write_config(
        tmp_path, run={"output_dir": str(tmp_path)},
        train={"ema_decay": DECAY, "grad_accum": 2, "checkpoint_every": 3, "max_steps": 6,
               "optimizer": {"lr": 0.02}})
    run = tmp_path / "tiny"
    first = in_process(config, ["train.max_steps=3"])
    p0, params = recorder["init"][0], list(recorder["updates"])
    assert len(params) == first.ema.updates == 3
    assert all(not torch.equal(params[i][n], params[i + 1][n])
               for i in range(2) for n in p0)  # the parameters moved at every step
    # the EMA reads the parameters after the applied step: the last ones are the model's
    ckpt3 = run / "checkpoints" / "step_00000003"
    model = load_file(ckpt3 / "model.safetensors")
    assert all(torch.equal(params[-1][n], model[n]) for n in p0)
    expected3 = closed_form(p0, params, DECAY)
    assert_matches(first.ema.state_dict(), expected3)
    saved = load_file(ckpt3 / "ema.safetensors")
    assert saved.keys() == model.keys()  # full state: parameters (EMA) and buffers
    assert all(torch.equal(saved[n], first.ema.state_dict()[n]) for n in p0)

    # resumed in a new Trainer: the EMA is loaded, not re-initialised from the parameters
    second = in_process(config, run_dir=run, resume=True)
    params += recorder["updates"][3:]
    assert len(params) == 6 and second.ema.updates == 6
    assert_matches(second.ema.state_dict(), closed_form(p0, params, DECAY))
    state = json.loads((run / "checkpoints" / "step_00000006" / "trainer_state.json").read_text())
    assert state["ema_updates"] == 6
    ema6 = load_file(run / "checkpoints" / "step_00000006" / "ema.safetensors")
    assert_matches({n: ema6[n] for n in p0}, closed_form(p0, params, DECAY))


def test_ema_skips_steps_the_optimizer_did_not_apply(tmp_path, helpers, in_process,
                                                     monkeypatch):
    """An fp16-overflow step (here: the engine reports step 2 as not applied) changes no
    weights, so the EMA must not fold the unchanged parameters in again."""
    from audio_core.engine.engine import Engine

    calls, step = [], Engine.step

    def overflow_on_second(self):
        applied = step(self)
        calls.append(applied)
        if len(calls) == 2:
            self.last_step_applied = applied = False
        return applied

    monkeypatch.setattr(Engine, "step", overflow_on_second)
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)},
                                  train={"ema_decay": DECAY, "max_steps": 4})
    trainer = in_process(config)
    assert len(calls) == 4 and trainer.ema.updates == 3


def test_ema_decay_out_of_range_is_rejected():
    with pytest.raises(ValueError, match=r"EMA decay must be in \(0, 1\)"):
        EMA(engine=None, decay=1.0)

