"""``audio-core train CONFIG --resume auto`` (what a requeued job runs): the config's run
folder is continued from its newest complete checkpoint, a missing or empty one starts a new
run, a run that never completed a checkpoint is moved aside (not deleted) and started over,
and a folder that is not a run is refused untouched."""

from __future__ import annotations

import json

import pytest

from audio_core.engine.run_dir import RunDirError, auto_resume

pytestmark = pytest.mark.integration


def logged_steps(run):
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "loss/total" in line]


def test_a_run_with_a_complete_checkpoint_is_continued(copy_run, cli, capsys, tmp_path,
                                                      helpers):
    run = copy_run("codec")  # 4 steps; checkpoints at 2 and 4
    config = helpers.write_config(tmp_path, helpers.write_tones(tmp_path / "data"),
                                  max_steps=6)
    assert auto_resume(run) == "resume"
    assert cli(["train", config, "--resume", "auto"]) == 0
    assert f"--resume auto: continuing {run}" in capsys.readouterr().err
    assert logged_steps(run) == [1, 2, 3, 4, 5, 6]  # each step trained once
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000006"
    assert not list(tmp_path.glob("codec.old-*"))


def test_no_run_folder_starts_a_new_run(cli, capsys, tmp_path, helpers):
    config = helpers.write_config(tmp_path, helpers.write_tones(tmp_path / "data"),
                                  max_steps=2, checkpoint_every=0)
    assert auto_resume(tmp_path / "codec") == "fresh"
    assert cli(["train", config, "--resume", "auto"]) == 0
    assert "--resume auto: starting a new run in" in capsys.readouterr().err
    assert logged_steps(tmp_path / "codec") == [1, 2]


def test_a_run_without_a_complete_checkpoint_is_moved_aside(copy_run, cli, capsys, tmp_path,
                                                           helpers):
    run = copy_run("codec")
    for state in run.glob("checkpoints/step_*/trainer_state.json"):
        state.write_text('{"step": ')  # truncated: no checkpoint is complete
    assert auto_resume(run) == "restart"
    config = helpers.write_config(tmp_path, helpers.write_tones(tmp_path / "data"),
                                  max_steps=1, checkpoint_every=0)
    assert cli(["train", config, "--resume", "auto"]) == 0
    err = capsys.readouterr().err
    [aside] = sorted(tmp_path.glob("codec.old-*"))
    assert f"--resume auto (no complete checkpoint): moved the previous run to {aside}" in err
    assert (aside / "config.yaml").is_file()  # the old run, kept
    assert logged_steps(run) == [1]  # a new run


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, cli, capsys, helpers):
    config = helpers.write_config(tmp_path, tmp_path / "data", max_steps=1)
    folder = tmp_path / "codec"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="holds no audio-core run"):
        auto_resume(folder)
    assert cli(["train", config, "--resume", "auto"]) == 1
    assert "holds no audio-core run" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RunDirError, match="is not a folder"):
        auto_resume(tmp_path / "afile")
    (tmp_path / "empty").mkdir()
    assert auto_resume(tmp_path / "empty") == "fresh"


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--resume", "auto"], "--resume auto needs CONFIG"),
    (["train", "--resume", "auto", "train.max_steps=3"], "--resume auto needs CONFIG"),
    (["train", "CONFIG", "--resume", "auto", "--overwrite"], "give one"),
])
def test_resume_auto_usage_errors(tmp_path, cli, capsys, helpers, argv, message):
    config = helpers.write_config(tmp_path, tmp_path / "data")
    assert cli([str(config) if a == "CONFIG" else a for a in argv]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "codec").exists()
