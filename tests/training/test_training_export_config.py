"""Export and load rebuild the model from the config stored in the checkpoint, not from the
run folder's ``config.yaml`` (which a later resume with other settings rewrites)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

import audio_core
from audio_core.engine.export import export_run

pytestmark = pytest.mark.integration


def test_export_and_load_use_the_checkpoints_config(tmp_path, helpers, in_process):
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)},
                                  train={"max_steps": 2, "checkpoint_every": 2})
    in_process(config)
    run = tmp_path / "tiny"
    ckpt = run / "checkpoints" / "step_00000002"
    trained = json.loads((ckpt / "trainer_state.json").read_text())["config"]
    # the run folder's config now describes another architecture
    changed = yaml.safe_load((run / "config.yaml").read_text())
    changed["model"]["encoder"]["params"]["width"] = 16
    (run / "config.yaml").write_text(yaml.safe_dump(changed))

    out = export_run(run, tmp_path / "export")
    assert (out / "config.yaml").read_text() == trained
    # the EMA weights when the run kept them, as export and load give by default
    name = "ema.safetensors" if (ckpt / "ema.safetensors").is_file() else "model.safetensors"
    weights = load_file(ckpt / name)
    for source in (out, run):  # strict state-dict loading: the architecture matches
        module = audio_core.load(source)
        assert module.config.model.encoder.params["width"] == 4
        state = module.state_dict()
        assert all(torch.equal(state[k], weights[k]) for k in weights)
