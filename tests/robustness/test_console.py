"""What ``audio-core train`` tells the user: a bad data path fails before the process group
starts (no DeepSpeed op build, no model build), the run folder is printed at the start and
the end, and validation metrics reach the console."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_bad_data_fails_before_the_process_group_starts(cli, capsys, tmp_path, monkeypatch):
    from audio_core import distributed

    def started(*args, **kwargs):
        raise AssertionError("the process group started before the data was checked")

    monkeypatch.setattr(distributed, "init_distributed", started)
    assert cli(["train", "tiny_autoencoder", f"run.output_dir={tmp_path}",
                "data.train.name=core.folder", f"data.train.params.root={tmp_path / 'none'}",
                "data.val=null"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "process group" not in err


def test_train_prints_the_run_folder_and_validation_metrics(cli, capsys, tmp_path, helpers,
                                                            deepspeed_ops):
    data = helpers.write_tones(tmp_path / "data")
    config = helpers.write_config(tmp_path, data, max_steps=2, checkpoint_every=0,
                                  val_every=2)
    assert cli(["train", config, f"data.val={{name: core.folder, params: {{root: {data}}}}}",
                "train.val_batches=1"]) == 0
    captured = capsys.readouterr()
    run = tmp_path / "codec"
    assert f"audio-core: run folder {run}" in captured.err.splitlines()[0]
    assert f"finished at step 2; run folder {run}" in captured.err
    line = next(x for x in captured.out.splitlines() if x.startswith("step 2 val/"))
    assert "val/mel_distance " in line and "val/si_sdr " in line
