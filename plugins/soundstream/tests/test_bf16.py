"""bf16 GAN training of the tiny preset in this process (a world of one): the generator and
discriminator compute in bf16 while the RVQ codebooks and their EMA statistics stay fp32."""

from __future__ import annotations

import math
import os

import pytest
import torch

from audio_core import distributed
from audio_core.config import load_config
from audio_core.engine.trainer import Trainer

pytestmark = pytest.mark.integration


def test_bf16_training_keeps_codebooks_fp32_and_learns_them(tmp_path, registry):
    cfg = load_config("soundstream.tiny", [
        f"run.output_dir={tmp_path}", "train.precision=bf16", "train.max_steps=4",
        "train.val_every=0", "train.checkpoint_every=4", "train.log_every=1",
        "train.trackers=[jsonl]", "data.segment_seconds=0.064", "data.batch_size=2",
        "task.params.warmup_steps=2"], registry=registry)
    saved = dict(os.environ)
    try:
        trainer = Trainer(cfg, registry=registry)
        trainer.setup()
        generator = trainer.engines["generator"].module
        start = {k: v.clone() for k, v in generator.quantizer.state_dict().items()}
        logs = trainer.fit()
    finally:
        distributed.teardown()
        os.environ.clear()
        os.environ.update(saved)
    assert generator.decoder.tail[-1].conv.weight.dtype == torch.bfloat16
    q = generator.quantizer.state_dict()
    embeds = [k for k in q if k.endswith(("embed", "embed_avg", "cluster_size"))]
    assert embeds and all(q[k].dtype == torch.float32 for k in embeds)
    assert all(not torch.equal(q[k], start[k]) for k in embeds)  # EMA updates happened
    assert math.isfinite(logs["loss/total"]) and "loss/adversarial" in logs
