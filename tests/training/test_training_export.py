"""Export of a ZeRO-3 run trained on 2 ranks (the shared launch of test_training_resume.py):
``audio-core export`` writes the same fp32 weights as ``Engine.full_state_dict()`` gathered
from the partitioned engine at the same step, and ``audio_core.load`` rebuilds a module whose
forward matches the engine's."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import audio_core
from audio_core.cli import main

pytestmark = pytest.mark.integration

STEP = 8


@pytest.fixture(scope="module")
def zero3(resume_runs):
    dump = torch.load(resume_runs / "z3_full.pt", weights_only=True)
    assert dump["zero_stage"] == 3 and dump["step"] == STEP
    return resume_runs / "z3_full", dump


def assert_equal_tensors(actual, expected):
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key].dtype == torch.float32, key
        assert torch.equal(actual[key], expected[key]), key


@pytest.mark.slow
def test_export_equals_gathered_weights(zero3, tmp_path, capsys):
    run, dump = zero3
    out = tmp_path / "export"
    assert main(["export", str(run), str(out), "--no-ema"]) == 0
    assert "exported" in capsys.readouterr().out
    exported = load_file(out / "model.safetensors")
    assert_equal_tensors(exported, dump["state"])
    assert (out / "config.yaml").read_text() == (run / "config.yaml").read_text()
    info = json.loads((out / "export.json").read_text())
    assert info["step"] == STEP and info["weights"] == "model"
    assert info["checkpoint"].endswith(f"step_{STEP:08d}")

    # DeepSpeed's own consolidation of the ZeRO-3 shards of both ranks agrees
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    shards = get_fp32_state_dict_from_zero_checkpoint(
        str(run / "checkpoints" / f"step_{STEP:08d}" / "generator"), tag="ckpt")
    assert_equal_tensors({k: v.float() for k, v in shards.items()}, exported)


@pytest.mark.slow
def test_loaded_module_forward_matches_the_engine(zero3, tmp_path):
    run, dump = zero3
    out = tmp_path / "export"
    main(["export", str(run), str(out), "--no-ema"])
    module = audio_core.load(out)
    assert not module.training and module.config.train.max_steps == STEP
    with torch.no_grad():
        got = module(dump["probe"]).reconstruction
    torch.testing.assert_close(got, dump["forward"], rtol=1e-5, atol=1e-6)
    # a run folder loads the same weights directly (its newest checkpoint)
    direct = audio_core.load(run, ema=False)
    assert_equal_tensors({k: v for k, v in direct.state_dict().items()}, dump["state"])


@pytest.mark.slow
def test_export_ema(zero3, tmp_path):
    run, dump = zero3
    out = tmp_path / "ema"
    assert main(["export", str(run), str(out), "--ema"]) == 0
    ema = load_file(out / "model.safetensors")
    saved = load_file(run / "checkpoints" / f"step_{STEP:08d}" / "ema.safetensors")
    assert_equal_tensors(ema, saved)
    assert any(not torch.equal(ema[k], dump["state"][k]) for k in ema)
    assert json.loads((out / "export.json").read_text())["weights"] == "ema"
    module = audio_core.load(out)
    with torch.no_grad():
        assert torch.isfinite(module(dump["probe"]).reconstruction).all()
    assert_equal_tensors(dict(audio_core.load(run, ema=True).state_dict()), saved)
    # EMA on: the EMA weights are what a plain export or load gives
    assert main(["export", str(run), str(tmp_path / "plain")]) == 0
    assert_equal_tensors(load_file(tmp_path / "plain" / "model.safetensors"), saved)
    assert json.loads((tmp_path / "plain" / "export.json").read_text())["weights"] == "ema"
    assert_equal_tensors(dict(audio_core.load(run).state_dict()), saved)


def test_export_errors_are_clear(tmp_path, capsys):
    assert main(["export", str(tmp_path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("audio-core: error:") and "has no complete checkpoint" in err
    assert not (tmp_path / "out").exists()
