"""``audio-core train --resume`` on checkpoints that were tampered with, half written or
partly lost: no code from a checkpoint runs, an incomplete checkpoint is passed over for
the newest complete one (and the message says which), a lost RNG file is announced."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch

from audio_core.storage.checkpoint import CheckpointManager, incomplete_reason
from audio_core.storage.safe_load import UnsafeCheckpointError, load_engine_state

pytestmark = pytest.mark.integration


class Planted:
    """Unpickling this runs ``exec(code)``: what a malicious checkpoint would carry."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def plant(file: Path, marker: Path) -> None:
    """Replace a DeepSpeed state file by one that creates ``marker`` when unpickled, and
    update the manifest as an attacker would (so only the loader stands in the way)."""
    state = load_engine_state(file)
    state["planted"] = Planted(f"open({str(marker)!r}, 'w').write('pwned')")
    torch.save(state, file)
    manifest = file.parents[2] / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        data["files"][file.relative_to(manifest.parent).as_posix()] = file.stat().st_size
        manifest.write_text(json.dumps(data))


def step_dir(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step_{step:08d}"


def model_states(run: Path, step: int) -> Path:
    return step_dir(run, step) / "generator" / "ckpt" / "mp_rank_00_model_states.pt"


def test_resume_never_runs_code_planted_in_a_checkpoint(copy_run, cli, capsys, tmp_path):
    run = copy_run()
    marker = tmp_path / "planted_code_ran"
    for step in (2, 4):  # every checkpoint: no clean one to fall back to
        plant(model_states(run, step), marker)
    assert cli(["train", "--resume", run, "train.max_steps=6"]) == 1
    assert not marker.exists(), "code from the checkpoint was executed"
    err = capsys.readouterr().err
    assert "refusing to load" in err and "mp_rank_00_model_states.pt" in err
    assert "builtins.exec" in err and "nothing in it was run" in err


def test_the_engine_state_loader_refuses_foreign_globals(tmp_path):
    marker = tmp_path / "ran"
    file = tmp_path / "state.pt"
    torch.save({"x": torch.ones(2), "evil": Planted(f"open({str(marker)!r}, 'w')")}, file)
    with pytest.raises(UnsafeCheckpointError, match=r"builtins\.exec"):
        load_engine_state(file)
    assert not marker.exists()
    torch.save({"x": torch.ones(2), "nested": [{"a": 1}, (2.0, "s")]}, file)
    assert torch.equal(load_engine_state(file)["x"], torch.ones(2))  # plain data loads


def test_rng_files_are_loaded_without_unpickling_code(copy_run, cli, tmp_path):
    run = copy_run()
    marker = tmp_path / "rng_code_ran"
    for step in (2, 4):
        rng = step_dir(run, step) / "rng" / "rank_00000.pt"
        torch.save({"torch": Planted(f"open({str(marker)!r}, 'w')")}, rng)
    assert cli(["train", "--resume", run, "train.max_steps=5"]) == 1
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["engine_state_missing", "engine_state_truncated",
                                    "trainer_state_truncated", "ema_truncated"])
def test_half_written_checkpoint_falls_back_to_the_newest_complete(copy_run, cli, caplog,
                                                                   damage):
    run = copy_run()
    newest = step_dir(run, 4)
    if damage == "engine_state_missing":
        model_states(run, 4).unlink()
    elif damage == "engine_state_truncated":
        data = model_states(run, 4).read_bytes()
        model_states(run, 4).write_bytes(data[: len(data) // 2])
    elif damage == "trainer_state_truncated":
        state = newest / "trainer_state.json"
        state.write_text(state.read_text()[:40])
    else:
        ema = newest / "ema.safetensors"
        ema.write_bytes(ema.read_bytes()[:100])
    assert incomplete_reason(newest) is not None
    with caplog.at_level(logging.WARNING, logger="audio_core"):
        assert cli(["train", "--resume", run, "train.max_steps=5"]) == 0
    warned = caplog.text
    assert "step_00000004 is incomplete" in warned and "using step_00000002 instead" in warned
    resumed = json.loads((step_dir(run, 5) / "trainer_state.json").read_text())
    assert resumed["step"] == 5
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text()
              .splitlines() if '"loss/total"' in line]
    assert logged == [1, 2, 3, 4, 3, 4, 5]  # steps 3 and 4 trained again from step 2


def test_every_checkpoint_incomplete_is_a_clear_error(copy_run, cli, capsys, caplog):
    run = copy_run()
    for step in (2, 4):
        model_states(run, step).unlink()
    with caplog.at_level(logging.WARNING, logger="audio_core"):
        assert cli(["train", "--resume", run]) == 1
    assert "no checkpoint under" in capsys.readouterr().err
    assert "step_00000002 is incomplete" in caplog.text
    assert "step_00000004 is incomplete" in caplog.text


def test_a_garbled_latest_pointer_is_ignored(copy_run):
    run = copy_run()
    (run / "checkpoints" / "latest").write_text("../../../etc")
    assert CheckpointManager(run / "checkpoints").latest() == step_dir(run, 4)
    (run / "checkpoints" / "latest").write_bytes(b"\xff\xfe\x00")
    assert CheckpointManager(run / "checkpoints").latest() == step_dir(run, 4)


def test_resume_without_a_ranks_rng_file_says_so(copy_run, cli, caplog):
    run = copy_run()
    os.remove(step_dir(run, 4) / "rng" / "rank_00000.pt")
    with caplog.at_level(logging.WARNING, logger="audio_core"):
        assert cli(["train", "--resume", run, "train.max_steps=5"]) == 0
    assert "rank_00000.pt is missing" in caplog.text
    assert "will NOT continue exactly" in caplog.text
    # it still resumed from step 4 (the RNG file is not worth 2 steps of training)
    assert "step_00000004 is incomplete" not in caplog.text


def test_universal_checkpoint_loading_is_refused(copy_run, cli, capsys):
    """DeepSpeed's universal-checkpoint loader unpickles with weights_only=False."""
    run = copy_run()
    assert cli(["train", "--resume", run, "train.max_steps=5",
                "deepspeed.checkpoint.load_universal=true"]) == 1
    assert "universal checkpoints" in capsys.readouterr().err


def test_resume_with_another_model_config_names_the_change(copy_run, cli, capsys):
    run = copy_run()
    config = (run / "config.yaml").read_bytes()
    assert cli(["train", "--resume", run, "train.max_steps=6",
                "model.decoder.params.width=6"]) == 1
    err = capsys.readouterr().err
    assert "model.decoder.params.width: 4 -> 6" in err and "Traceback" not in err
    assert not step_dir(run, 6).exists()
    assert (run / "config.yaml").read_bytes() == config  # refused before any write
    assert cli(["train", "--resume", run, "train.max_steps=5",
                "train.optimizer.lr=0.0005"]) == 0  # settings outside the model may change


def test_resume_with_another_number_of_processes_is_refused(copy_run, cli, capsys):
    run = copy_run()
    for step in (2, 4):
        state = step_dir(run, step) / "trainer_state.json"
        state.write_text(state.read_text().replace('"world_size": 1', '"world_size": 2'))
    assert cli(["train", "--resume", run]) == 1
    assert "written by 2 rank(s); this run has 1" in capsys.readouterr().err
