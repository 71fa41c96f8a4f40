"""Checkpoint safety, in this process (a world of one): an interrupted save never corrupts
the previous checkpoint, stale ``.tmp`` folders go away, ``keep_checkpoints`` keeps exactly
the newest N, and a run resumes from whatever ``latest`` (or the newest complete one) is."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from audio_core.engine.engine import Engine
from audio_core.storage.checkpoint import CheckpointManager

pytestmark = pytest.mark.integration


class Crash(RuntimeError):
    pass


def names(root):
    return sorted(p.name for p in root.iterdir() if p.name != "latest")


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, helpers, in_process, monkeypatch):
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)},
                                  train={"checkpoint_every": 2, "keep_checkpoints": 2})
    run = tmp_path / "tiny"
    ckpts = run / "checkpoints"
    in_process(config, ["train.max_steps=4"])
    assert names(ckpts) == ["step_00000002", "step_00000004"]
    before = load_file(ckpts / "step_00000004" / "model.safetensors")

    # crash in the middle of the next save: DeepSpeed has written its files into the .tmp
    original = Engine.save

    def crashing_save(self, directory, tag, client_state=None):
        original(self, directory, tag, client_state)
        raise Crash("disk full")

    monkeypatch.setattr(Engine, "save", crashing_save)
    with pytest.raises(Crash):
        in_process(config, ["train.max_steps=5"], run_dir=run, resume=True)
    monkeypatch.undo()
    assert names(ckpts) == ["step_00000002", "step_00000004", "step_00000005.tmp"]
    assert (ckpts / "step_00000005.tmp" / "generator" / "ckpt").is_dir()
    manager = CheckpointManager(ckpts)
    assert (ckpts / "latest").read_text().strip() == "step_00000004"
    assert manager.latest() == ckpts / "step_00000004"
    after = manager.load_tensors(manager.latest())
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in after)

    # the previous checkpoint loads: the run resumes from step 4 and finishes; the next save
    # removes the stale .tmp and keep_checkpoints=2 keeps exactly the newest two
    trainer = in_process(config, ["train.max_steps=8"], run_dir=run, resume=True)
    assert trainer.step == 8
    assert names(ckpts) == ["step_00000006", "step_00000008"]
    assert (ckpts / "latest").read_text().strip() == "step_00000008"
    steps = [r["step"] for r in helpers.read_metrics(run) if "loss/total" in r["metrics"]]
    assert steps == [1, 2, 3, 4, 5, 5, 6, 7, 8]  # step 5 was trained twice (crash, redo)


def test_resuming_a_finished_run_does_not_rewrite_its_checkpoint(tmp_path, helpers, in_process,
                                                                 monkeypatch):
    """Nothing left to train: no save, so nothing can delete the only newest checkpoint."""
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)},
                                  train={"max_steps": 3, "checkpoint_every": 0})
    run = tmp_path / "tiny"
    in_process(config)
    ckpt = run / "checkpoints" / "step_00000003"
    stamp = (ckpt / "trainer_state.json").stat().st_mtime_ns

    def no_save(*args, **kwargs):
        raise Crash("a finished run must not save again")

    monkeypatch.setattr(CheckpointManager, "save", no_save)
    trainer = in_process(config, run_dir=run, resume=True)
    assert trainer.step == 3
    assert (ckpt / "trainer_state.json").stat().st_mtime_ns == stamp


def test_keep_checkpoints_keeps_exactly_the_newest(tmp_path, helpers, in_process):
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)},
                                  train={"max_steps": 7, "checkpoint_every": 1,
                                         "keep_checkpoints": 3, "ema_decay": 0.0})
    in_process(config)
    ckpts = tmp_path / "tiny" / "checkpoints"
    assert names(ckpts) == ["step_00000005", "step_00000006", "step_00000007"]
    assert not (ckpts / "step_00000007" / "ema.safetensors").exists()  # EMA off
    state = json.loads((ckpts / "step_00000007" / "trainer_state.json").read_text())
    assert state["step"] == 7 and state["world_size"] == 1 and state["roles"] == ["generator"]
    assert (ckpts / "step_00000007" / "rng" / "rank_00000.pt").is_file()


def test_resume_without_a_valid_latest_pointer(tmp_path, helpers, in_process):
    """``latest`` missing or naming a deleted folder: the newest complete checkpoint is used;
    an incomplete folder (no trainer_state.json) never is."""
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)},
                                  train={"max_steps": 4, "checkpoint_every": 2})
    run = tmp_path / "tiny"
    ckpts = run / "checkpoints"
    in_process(config)
    (ckpts / "latest").write_text("step_00000099")  # dangling
    assert CheckpointManager(ckpts).latest() == ckpts / "step_00000004"
    (ckpts / "latest").unlink()
    (ckpts / "step_00000004" / "trainer_state.json").unlink()  # incomplete now
    assert CheckpointManager(ckpts).latest() == ckpts / "step_00000002"
    trainer = in_process(config, ["train.max_steps=3"], run_dir=run, resume=True)
    assert trainer.step == 3


def test_resume_without_any_checkpoint_is_an_error(tmp_path, helpers, in_process):
    from audio_core.errors import AudioCoreError

    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)})
    with pytest.raises(AudioCoreError, match="no checkpoint under"):
        in_process(config, run_dir=tmp_path / "empty", resume=True)


def test_setup_is_idempotent(tmp_path, helpers, in_process):
    """``fit()`` calls ``setup()``; a caller who set up first to inspect the engines (or
    calls it again) keeps the same engines, data and EMA rather than fresh copies."""
    config = helpers.write_config(tmp_path, run={"output_dir": str(tmp_path)},
                                  train={"max_steps": 1, "checkpoint_every": 0})
    trainer = in_process(config)
    engines, ema, loader = trainer.engines, trainer.ema, trainer.loader
    trainer.setup()
    assert trainer.engines is engines and trainer.ema is ema and trainer.loader is loader
