"""DeepSpeed config building: "auto" filling, shorthands, presets, conflicts (no processes)."""

import json
import math
from pathlib import Path

import pytest

from audio_core.config.loader import load_config
from audio_core.config.schema import OptimizerConfig, RunConfig
from audio_core.engine.ds_config import (
    PRESET_DIR,
    build_ds_config,
    lr_lambda,
    preset_names,
    read_ds_json,
)
from audio_core.errors import ConfigError


def run_config(**deepspeed) -> RunConfig:
    cfg = RunConfig()
    cfg.data.batch_size = 3
    cfg.train.grad_accum = 2
    cfg.train.grad_clip = 1.5
    cfg.train.max_steps = 100
    cfg.train.optimizer = OptimizerConfig(lr=2e-3, betas=[0.8, 0.95], eps=1e-6,
                                          weight_decay=0.1, warmup_steps=10)
    cfg.deepspeed = deepspeed
    return cfg


def write_json(tmp_path, data) -> str:
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_defaults_follow_the_run_config():
    ds = build_ds_config(run_config(), world_size=4)
    assert ds["train_micro_batch_size_per_gpu"] == 3
    assert ds["gradient_accumulation_steps"] == 2
    assert ds["train_batch_size"] == 3 * 2 * 4
    assert ds["gradient_clipping"] == 1.5
    assert ds["zero_optimization"]["stage"] == 0
    assert ds["bf16"]["enabled"] is False and ds["fp16"]["enabled"] is False
    assert "optimizer" not in ds and "scheduler" not in ds  # client AdamW + LambdaLR
    assert ds["zero_allow_untested_optimizer"] is True


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_precision(precision):
    cfg = run_config()
    cfg.train.precision = precision
    ds = build_ds_config(cfg, world_size=1)
    assert ds[precision]["enabled"] is True
    assert ds["fp16" if precision == "bf16" else "bf16"]["enabled"] is False


@pytest.mark.parametrize("name", ["zero0", "zero1", "zero2", "zero3", "zero3_offload"])
def test_presets_fill_every_auto(name):
    cfg = run_config(config=name)
    cfg.train.precision = "bf16"
    ds = build_ds_config(cfg, world_size=2)
    assert "auto" not in json.dumps(ds)
    assert ds["train_batch_size"] == 12 and ds["gradient_clipping"] == 1.5
    assert ds["bf16"]["enabled"] is True
    stage = int(name[4])
    assert ds["zero_optimization"]["stage"] == stage
    if name == "zero3_offload":
        assert ds["optimizer"]["params"] == {"lr": 2e-3, "betas": [0.8, 0.95], "eps": 1e-6,
                                             "weight_decay": 0.1}
        assert ds["zero_optimization"]["offload_param"]["pin_memory"] in (True, False)


def test_preset_names_listed():
    assert {"zero0", "zero1", "zero2", "zero3", "zero3_offload"} <= set(preset_names())


def test_unknown_preset_names_the_presets():
    with pytest.raises(ConfigError, match=r"zero9.*zero3_offload"):
        build_ds_config(run_config(config="zero9"), world_size=1)


def test_preset_names_ignore_the_working_directory(tmp_path, monkeypatch):
    """A folder's own configs/deepspeed/zero2.json (or a file called zero2) does not
    replace the shipped preset: a name means the same file everywhere."""
    shipped = read_ds_json("zero2")
    local = tmp_path / "configs" / "deepspeed"
    local.mkdir(parents=True)
    for path in (local / "zero2.json", tmp_path / "zero2", local / "mine.json"):
        path.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    monkeypatch.chdir(tmp_path)
    assert read_ds_json("zero2") == shipped and shipped["zero_optimization"]["stage"] == 2
    assert "mine" not in preset_names()
    assert build_ds_config(run_config(config="zero2"), 1)["zero_optimization"]["stage"] == 2


def test_own_json_is_a_path_relative_to_the_working_directory_of_the_call(tmp_path,
                                                                          monkeypatch):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "mine.json").write_text(json.dumps({"zero_optimization": {"stage": 1}}))
    cfg = run_config(config="ds/mine.json")
    monkeypatch.chdir(tmp_path)
    assert build_ds_config(cfg, 1)["zero_optimization"]["stage"] == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    missing = str(elsewhere / "ds" / "mine.json")
    with pytest.raises(ConfigError, match=r"deepspeed\.config .ds/mine\.json") as err:
        build_ds_config(cfg, 1)
    assert f"'{missing}' does not exist" in str(err.value)
    assert "zero3_offload" in str(err.value)  # and the presets it could have named
    with pytest.raises(ConfigError, match="is not a file"):
        read_ds_json(str(tmp_path / "ds"))


def test_configs_deepspeed_is_a_link_to_the_shipped_presets():
    link = Path(__file__).resolve().parents[2] / "configs" / "deepspeed"
    assert link.is_symlink()
    assert link.resolve() == link.parents[1] / "core" / "presets" / "deepspeed"
    shipped = {p.name: p.read_bytes() for p in PRESET_DIR.glob("*.json")}
    assert {p.name: p.read_bytes() for p in link.glob("*.json")} == shipped


def test_user_json_auto_values_are_filled(tmp_path):
    path = write_json(tmp_path, {
        "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": 2,
        "train_batch_size": "auto", "gradient_clipping": "auto",
        "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto",
                                                  "eps": "auto", "weight_decay": 0.1}},
        "scheduler": {"type": "WarmupDecayLR", "params": {
            "warmup_num_steps": "auto", "warmup_max_lr": "auto", "warmup_min_lr": "auto",
            "total_num_steps": "auto"}},
        "zero_optimization": {"stage": 2, "reduce_bucket_size": "auto"}})
    ds = build_ds_config(run_config(config=path), world_size=2)
    assert ds["train_micro_batch_size_per_gpu"] == 3 and ds["train_batch_size"] == 12
    assert ds["optimizer"]["params"]["lr"] == 2e-3
    assert ds["optimizer"]["params"]["betas"] == [0.8, 0.95]
    assert ds["scheduler"]["params"] == {"warmup_num_steps": 10, "warmup_max_lr": 2e-3,
                                         "warmup_min_lr": 0.0, "total_num_steps": 100}
    assert "reduce_bucket_size" not in ds["zero_optimization"]  # DeepSpeed's default
    assert "zero_allow_untested_optimizer" not in ds


def test_scheduler_keys_are_not_invented(tmp_path):
    path = write_json(tmp_path, {"scheduler": {"type": "WarmupLR",
                                               "params": {"warmup_num_steps": "auto"}}})
    ds = build_ds_config(run_config(config=path), world_size=1)
    assert ds["scheduler"]["params"] == {"warmup_num_steps": 10}


def test_conflicts_name_both_keys_and_values(tmp_path):
    path = write_json(tmp_path, {"gradient_accumulation_steps": 4, "gradient_clipping": 1.5,
                                 "train_micro_batch_size_per_gpu": 3,
                                 "optimizer": {"type": "AdamW", "params": {"lr": 1e-4}},
                                 "bf16": {"enabled": True}})
    with pytest.raises(ConfigError) as info:
        build_ds_config(run_config(config=path), world_size=2, role="generator")
    msg = str(info.value)
    assert "engine 'generator'" in msg
    assert "'gradient_accumulation_steps' = 4 but train.grad_accum = 2" in msg
    assert "'optimizer.params.lr' = 0.0001 but train.optimizer.lr = 0.002" in msg
    assert "'bf16.enabled' = True but train.precision ('fp32') = False" in msg
    assert "gradient_clipping" not in msg and "train_micro" not in msg  # those agree
    assert info.value.path == "deepspeed"


def test_train_batch_size_must_match_world_size():
    with pytest.raises(ConfigError, match=r"'train_batch_size' = 6 but data.batch_size \* "
                                          r"train.grad_accum \* world_size \(3 \* 2 \* 2\) = 12"):
        build_ds_config(run_config(train_batch_size=6), world_size=2)
    assert build_ds_config(run_config(train_batch_size=6), world_size=1)["train_batch_size"] == 6


def test_optimizer_type_must_be_adamw():
    with pytest.raises(ConfigError, match=r"optimizer\.type' = 'Lamb'"):
        build_ds_config(run_config(optimizer={"type": "Lamb", "params": {}}), world_size=1)
    ds = build_ds_config(run_config(optimizer={"type": "adamw", "params": {}}), world_size=1)
    assert ds["optimizer"]["params"]["lr"] == 2e-3  # missing keys are filled too


def test_shorthands_and_section_keys():
    ds = build_ds_config(run_config(zero_stage=3, offload_param="cpu", offload_optimizer="cpu",
                                    zero_optimization={"overlap_comm": True}), world_size=1)
    zero = ds["zero_optimization"]
    assert zero["stage"] == 3 and zero["overlap_comm"] is True
    assert zero["offload_param"]["device"] == "cpu"
    assert ds["optimizer"]["type"] == "AdamW"  # offload needs DeepSpeed's CPU Adam


def test_section_overrides_user_json():
    ds = build_ds_config(run_config(config="zero2", zero_stage=1), world_size=1)
    assert ds["zero_optimization"]["stage"] == 1
    assert ds["zero_optimization"]["contiguous_gradients"] is True


def test_roles_get_their_own_config():
    cfg = run_config(zero_stage=3, roles={"discriminator": {"zero_stage": 0,
                                                            "gradient_clipping": "auto"}})
    assert build_ds_config(cfg, 2, "generator")["zero_optimization"]["stage"] == 3
    assert build_ds_config(cfg, 2, "discriminator")["zero_optimization"]["stage"] == 0


def test_role_optimizer_overrides_train_optimizer():
    cfg = run_config(optimizer={"type": "AdamW", "params": {"lr": "auto"}})
    ds = build_ds_config(cfg, 1, "discriminator", OptimizerConfig(lr=1e-4))
    assert ds["optimizer"]["params"]["lr"] == 1e-4


@pytest.mark.parametrize(("section", "match"), [
    ({"zero_stage": 4}, "zero_stage must be 0, 1, 2 or 3"),
    ({"offload_param": "gpu"}, "offload_param must be one of"),
    ({"zero_stage": 2, "offload_param": "cpu"},
     "offload_param.device = 'cpu' needs ZeRO stage >= 3"),
    ({"offload_optimizer": "cpu"}, "offload_optimizer.device = 'cpu' needs ZeRO stage >= 1"),
    ({"bf16": {"enabled": "auto"}, "fp16": {"enabled": True}}, "fp16.enabled' = True"),
    ({"zero_optimization": {"stage": 3, "round_robin_gradients": "auto"}},
     "cannot fill \"auto\" for 'zero_optimization.round_robin_gradients'"),
])
def test_invalid_sections(section, match):
    with pytest.raises(ConfigError, match=match):
        build_ds_config(run_config(**section), world_size=1)


def test_bad_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        build_ds_config(run_config(config=str(path)), world_size=1)


def test_loaded_from_yaml_overrides():
    cfg = load_config({}, ["deepspeed.zero_stage=2", "deepspeed.config=zero2",
                           "train.optimizer.eps=1e-7", "train.precision=bf16"],
                      check_components=False)
    ds = build_ds_config(cfg, world_size=2)
    assert ds["zero_optimization"]["stage"] == 2 and ds["bf16"]["enabled"] is True
    assert cfg.train.optimizer.eps == 1e-7


@pytest.mark.parametrize(("schedule", "expected"), [
    ("constant", [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0]),
    ("linear", [0.2, 0.4, 0.6, 0.8, 1.0, 0.75, 0.5, 0.25, 0.0]),
    ("cosine", [0.2, 0.4, 0.6, 0.8, 1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5,
                (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]),
])
def test_lr_lambda(schedule, expected):
    factor = lr_lambda(OptimizerConfig(warmup_steps=4, schedule=schedule), max_steps=8)
    assert [factor(s) for s in range(9)] == pytest.approx(expected)
    assert factor(100) == pytest.approx(expected[-1])


def test_lr_lambda_floor_and_no_warmup():
    factor = lr_lambda(OptimizerConfig(schedule="linear", min_lr_ratio=0.1), max_steps=10)
    assert factor(0) == 1.0 and factor(10) == pytest.approx(0.1)
    assert factor(5) == pytest.approx(0.1 + 0.9 * 0.5)
