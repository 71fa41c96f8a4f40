"""The ``deepspeed`` launcher end to end on CPU: ``--num_gpus 2`` starts 2 ranks (DeepSpeed's
CPU accelerator takes it as the process count), which train, checkpoint and export.

The launcher's flag is ``--module`` (it has no ``-m``): ``deepspeed --num_gpus 2
--master_port P --module audio_core train ...``. It puts ``--local_rank=N`` before the
sub-command, which the top-level ``audio-core`` parser accepts and ignores (the rank
comes from the environment).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import audio_core
from audio_core.cli import build_parser, main
from audio_core.distributed import free_port

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_deepspeed_launcher_trains_checkpoints_and_exports(tmp_path, helpers):
    runner = shutil.which("deepspeed", path=str(helpers.BIN))
    assert runner, "the deepspeed launcher script is not installed next to python"
    config = helpers.write_config(tmp_path, run={"name": "ds", "output_dir": str(tmp_path)})
    helpers.run_process([runner, "--num_gpus", "2", "--master_port", str(free_port()),
                         "--no_local_rank", "--module", "audio_core", "train", str(config),
                         "deepspeed.zero_stage=1", "train.max_steps=4",
                         "train.checkpoint_every=2"], tmp_path)
    run = tmp_path / "ds"
    ckpt = run / "checkpoints" / "step_00000004"
    assert (run / "checkpoints" / "latest").read_text().strip() == ckpt.name
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["loader"]["world_size"] == 2
    assert sorted(p.name for p in (ckpt / "rng").iterdir()) == ["rank_00000.pt",
                                                                "rank_00001.pt"]
    steps = [r["step"] for r in helpers.read_metrics(run) if "loss/total" in r["metrics"]]
    assert steps == [1, 2, 3, 4]  # rank 0 alone logs

    out = tmp_path / "export"
    assert main(["export", str(run), str(out)]) == 0
    module = audio_core.load(out)
    audio = torch.randn(1, 1, 4000)
    with torch.no_grad():
        recon = module(audio).reconstruction
    assert recon.shape == audio.shape and torch.isfinite(recon).all()


def test_local_rank_before_the_subcommand_is_accepted(tmp_path):
    args = build_parser().parse_args(["--local_rank=1", "train", str(tmp_path / "c.yaml")])
    assert args.command == "train"
