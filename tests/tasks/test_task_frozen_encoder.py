"""The frozen-encoder task through the real Trainer on 2 CPU ranks, then export and load."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def frozen(task_results):
    return task_results["frozen"]


def test_encoder_is_unchanged_and_frozen(frozen):
    assert frozen["encoder_unchanged"]  # bitwise equal to a fresh build after 3 steps
    assert frozen["encoder_frozen"]  # eval mode, requires_grad False
    assert frozen["decoder_changed"]  # while the trained part did move


def test_encoder_is_in_no_optimizer(frozen):
    assert not frozen["encoder_in_optimizer"]
    assert frozen["optimizer_numel"] == frozen["decoder_numel"]


def test_encoder_is_absent_from_checkpoints_and_exports(frozen):
    expected = frozen["export_keys"]
    assert expected and all(k.startswith(("decoder.", "normalizer.")) for k in expected)
    assert frozen["ckpt_module_keys"] == expected  # DeepSpeed model states
    assert frozen["ckpt_safetensors_keys"] == expected  # consolidated model.safetensors
    assert frozen["export_file_keys"] == expected  # audio-core export
    assert not any(f.startswith("encoder") for f in frozen["ckpt_files"])
    assert {f.split("/")[0] for f in frozen["ckpt_files"]} == {
        "generator", "manifest.json", "model.safetensors", "rng", "trainer_state.json"}


def test_export_loads_back_into_the_whole_model(frozen):
    assert frozen["loaded_type"] == "FrozenEncoderAutoencoder"
    assert frozen["loaded_matches"]
