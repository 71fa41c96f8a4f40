"""``audio-core train`` never writes into another run's folder unless asked to resume it
or to start over (which moves the old run aside); the run folder gets the bad-file
report."""

from __future__ import annotations

import json

import pytest

from audio_core.engine.run_dir import RunDirError, prepare_run_dir

pytestmark = pytest.mark.integration


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_train_into_an_existing_run_folder_is_refused(copy_run, cli, capsys, tmp_path,
                                                     helpers):
    run = copy_run("codec")  # tmp_path/codec: where this config's run.name points
    before = snapshot(run)
    config = helpers.write_config(tmp_path, run.parent / "unused_data", max_steps=1)
    assert cli(["train", config, f"run.output_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert f"run folder {run} is not empty" in err
    assert f"--resume {run}" in err and "--overwrite" in err
    assert snapshot(run) == before  # not one byte changed


def test_overwrite_moves_the_old_run_aside(copy_run, cli, capsys, tmp_path, helpers):
    run = copy_run("codec")
    before = snapshot(run)
    config = helpers.write_config(tmp_path, helpers.write_tones(tmp_path / "data"),
                                  max_steps=1, checkpoint_every=0)
    assert cli(["train", config, "--overwrite"]) == 0
    asides = sorted(tmp_path.glob("codec.old-*"))
    assert len(asides) == 1 and snapshot(asides[0]) == before  # the old run, intact
    assert f"moved the previous run to {asides[0]}" in capsys.readouterr().err
    state = json.loads((run / "checkpoints" / "step_00000001" / "trainer_state.json")
                       .read_text())
    assert state["step"] == 1  # a new run in the original folder


def test_a_folder_with_any_user_file_is_protected(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty"):
        prepare_run_dir(tmp_path)
    assert prepare_run_dir(tmp_path / "new") is None  # a new folder is fine
    (tmp_path / "empty").mkdir()
    assert prepare_run_dir(tmp_path / "empty") is None


def test_resume_and_overwrite_together_are_refused(tmp_path):
    with pytest.raises(RunDirError, match="give one"):
        prepare_run_dir(tmp_path, resume=True, overwrite=True)


def test_a_file_where_the_run_folder_should_be(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(RunDirError, match="not a folder"):
        prepare_run_dir(tmp_path / "run")


def test_only_rank_zero_moves_the_folder(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("x")
    assert prepare_run_dir(tmp_path / "run", overwrite=True, rank=1) is None
    assert (tmp_path / "run" / "config.yaml").is_file()
    aside = prepare_run_dir(tmp_path / "run", overwrite=True, rank=0)
    assert (aside / "config.yaml").read_text() == "x" and not (tmp_path / "run").exists()


def test_the_bad_file_report_is_written_to_the_run_folder(trained_run):
    report = json.loads((trained_run / "bad_files.json").read_text())
    assert [b["path"].rsplit("/", 1)[-1] for b in report["train"]] == ["broken.wav"]
    assert "corrupt" in report["train"][0]["reason"]


def test_an_unwritable_output_folder_is_a_clear_error(tmp_path, monkeypatch):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.path.abspath(p) == str(
        locked) else real_access(p, mode, **kw))  # root ignores chmod: answer as for a user
    with pytest.raises(RunDirError, match=f"parent folder {locked}: permission denied"):
        prepare_run_dir(locked / "runs" / "x")


def test_a_failed_set_up_is_a_clear_error_and_leaves_no_run_behind(cli, capsys, tmp_path):
    """A dataset folder that does not exist: set-up fails. The folder it began is removed
    (it was new), so the corrected command runs without --overwrite."""
    assert cli(["train", "tiny_autoencoder", f"run.output_dir={tmp_path}", "train.max_steps=1",
                "data.train.name=core.folder", f"data.train.params.root={tmp_path / 'none'}",
                "data.val=null"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "tiny_autoencoder").exists()
    assert prepare_run_dir(tmp_path / "tiny_autoencoder") is None  # free again
