"""``config validate`` refuses what ``train`` would crash on (it builds everything train
builds), value checks cover lists and non-finite numbers, and a preset can be pointed at
the user's own folder (renaming a component replaces its params)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio_core.cli import main
from audio_core.config import load_config
from audio_core.errors import ConfigError


def validate(capsys, *argv) -> tuple[int, str]:
    code = main(["config", "validate", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.mark.parametrize(("override", "message"), [
    # the cases validate passed and train crashed on
    ("train.optimizer.betas=[0.9]", "must have exactly 2 items, got 1"),
    ("train.ema_decay=1.5", "invalid value 1.5 at train.ema_decay: must be < 1.0"),
    ("train.ema_decay=1", "invalid value 1.0 at train.ema_decay: must be < 1.0"),
    ("model.encoder.params.dim=-4", "could not build encoder 'core.conv' at model.encoder"),
    ("deepspeed.zero_stage=7", "deepspeed.zero_stage must be 0, 1, 2 or 3, got 7"),
    ("train.trackers=[jsonl,wandb]", "invalid value 'wandb' at train.trackers[1]"),
    # the next ones of the same kind
    ("train.optimizer.betas=[0.9,1.0]", "train.optimizer.betas[1]: must be < 1.0"),
    ("train.optimizer.betas=[-0.1,0.9]", "train.optimizer.betas[0]: must be >= 0.0"),
    ("train.optimizer.lr=nan", "train.optimizer.lr: must be a finite number"),
    ("train.optimizer.lr=inf", "train.optimizer.lr: must be a finite number"),
    ("data.segment_seconds=nan", "data.segment_seconds: must be a finite number"),
    ("train.optimizer.min_lr_ratio=2", "train.optimizer.min_lr_ratio: must be <= 1.0"),
    ("model.decoder.params.ratios=[0,4]", "could not build decoder 'core.conv'"),
    ("model.losses[0].params.nonsense=1", "could not build loss 'core.l1' at model.losses[0]"),
    ("deepspeed.offload_optimizer=gpu", "deepspeed.offload_optimizer must be one of"),
    ("deepspeed.zero_optimization.stage=5", "zero_optimization.stage must be 0-3"),
    ("deepspeed.train_batch_size=3", "contradicts the run config"),
    ("data.train.params.num_items=4", "fewer than one batch of data.batch_size (8)"),
    ("data.train.params.num_items=0", "num_items, max_events and sample_rate must be positive"),
    ("model.losses[3].weight=2", "model.losses[3] does not exist: model.losses has 2 item(s)"),
    ("model.decoder=null", "model.decoder is required by model core.autoencoder"),
    ("model.losses=[]", "model.losses is required by model core.autoencoder"),
    ("task.name=core.adversarial",
     "model.discriminators is required by model core.autoencoder with task core.adversarial"),
])
def test_validate_refuses_what_train_would_crash_on(capsys, override, message):
    code, out = validate(capsys, "tiny_autoencoder", override)
    assert code == 1, out
    assert message in out
    assert "Traceback" not in out


def test_validate_passes_a_trainable_preset_and_reports_what_it_built(capsys):
    code, out = validate(capsys, "tiny_autoencoder")
    assert code == 0, out
    assert "built generator (" in out and "train: 1024 items, val: 32 items" in out


def test_validate_step_catches_components_that_do_not_fit(capsys):
    code, out = validate(capsys, "tiny_autoencoder", "model.decoder.params.dim=16", "--step")
    assert code == 1 and "the training step (at step 0) on one batch failed" in out
    code, out = validate(capsys, "tiny_autoencoder", "--step")
    assert code == 0 and "training step ran at step(s) [0, 599]" in out


def test_validate_checks_the_batch_against_the_world_size(capsys):
    code, out = validate(capsys, "tiny_autoencoder", "data.train.params.num_items=12",
                         "--world-size", "2")
    assert code == 1 and "x 2 rank(s)" in out


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "my_speech"
    root.mkdir()
    for i in range(4):
        sf.write(root / f"utt{i}.wav", 0.1 * np.ones(16000, np.float32), 16000)
    return root


def test_a_preset_can_be_pointed_at_a_folder(folder, capsys):
    cfg = load_config("tiny_autoencoder", ["data.train.name=core.folder",
                                           f"data.train.params.root={folder}",
                                           "data.val=null"], check_params=True)
    assert cfg.data.train.name == "core.folder"
    assert cfg.data.train.params == {"root": str(folder)}  # num_items is gone
    code, out = validate(capsys, "tiny_autoencoder", "data.train.name=core.folder",
                         f"data.train.params.root={folder}", "data.batch_size=4",
                         "data.val=null")
    assert code == 0, out


def test_extends_can_swap_a_presets_dataset(folder, tmp_path):
    """What the presets' comments tell users to do (soundstream checks its own presets)."""
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"extends: core.tiny_autoencoder\ndata:\n  train:\n"
                    f"    name: core.folder\n    params: {{root: {folder}}}\n"
                    f"  val:\n    name: core.folder\n    params: {{root: {folder}}}\n")
    cfg = load_config(mine, check_params=True)
    assert cfg.data.train.params == {"root": str(folder)}
    assert cfg.data.val.params == {"root": str(folder)}


def test_the_same_name_still_merges_params():
    cfg = load_config("tiny_autoencoder", ["model.encoder.params.dim=16"])
    assert cfg.model.encoder.params == {"dim": 16, "width": 16, "ratios": [2, 4, 4]}
    renamed = load_config("demo", ["run.name=other"])
    assert renamed.run.seed == 0 and renamed.run.name == "other"  # not a component


def test_list_items_can_be_overridden_by_index():
    cfg = load_config("tiny_autoencoder", ["model.losses[1].weight=2",
                                           "model.losses.1.params.eps=0.001"],
                      check_params=True)
    assert [(loss.name, loss.weight) for loss in cfg.model.losses] == [("core.l1", 1.0),
                                                                        ("core.mel", 2.0)]
    assert cfg.model.losses[1].params == {"eps": 0.001}
    swapped = load_config("tiny_autoencoder", ["model.losses[1].name=core.l1"])
    assert swapped.model.losses[1].params == {} and swapped.model.losses[1].name == "core.l1"


def test_the_replace_marker_drops_inherited_params(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: tiny_autoencoder\nmodel:\n  encoder:\n    params:\n"
                    "      _replace_: true\n      dim: 32\n")
    cfg = load_config(mine)
    assert cfg.model.encoder.params == {"dim": 32}
    with pytest.raises(ConfigError, match=r"unknown config key 'run\._replac_'"):  # a typo
        load_config({"run": {"_replac_": True}})


@pytest.mark.parametrize("target", ["/etc/passwd", "/etc/hostname"])
def test_extends_of_a_file_that_is_not_a_config_quotes_nothing_of_it(tmp_path, target):
    """(issue 23) `extends: /etc/passwd` printed that file's lines as an unknown key."""
    config = tmp_path / "evil.yaml"
    config.write_text(f"extends: {target}\n")
    with pytest.raises(ConfigError, match="is not a config file") as info:
        load_config(config, [])
    assert "root:" not in str(info.value) and target in str(info.value)
