"""``model.init``: a training run starts from an imported EnCodec's weights (fine-tuning),
and refuses weights of another architecture with an error naming the tensors."""

from __future__ import annotations

import math
import os

import pytest
import torch

transformers = pytest.importorskip("transformers")

from audio_core import distributed  # noqa: E402
from audio_core.config import load_config  # noqa: E402
from audio_core.engine.export import export_run, load  # noqa: E402
from audio_core.engine.imports import import_model  # noqa: E402
from audio_core.engine.trainer import Trainer, build_task  # noqa: E402
from audio_core.engine.weights_check import WeightsMismatchError  # noqa: E402


@pytest.fixture
def imported(tmp_path):
    torch.manual_seed(0)
    config = transformers.EncodecConfig(hidden_size=8, num_filters=4, upsampling_ratios=[4, 2],
                                        codebook_size=16, num_lstm_layers=1,
                                        target_bandwidths=[12.0, 24.0])
    ref = transformers.EncodecModel(config)
    with torch.no_grad():
        for layer in ref.quantizer.layers:
            layer.codebook.embed.normal_(0, 0.1)
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
            layer.codebook.cluster_size.fill_(4.0)
    ref.save_pretrained(tmp_path / "hf")
    return import_model(tmp_path / "hf", tmp_path / "imported")


@pytest.mark.integration
def test_finetune_starts_from_imported_weights(tmp_path, imported, registry):
    cfg = load_config(str(imported / "config.yaml"), [
        f"model.init={imported}", f"run.output_dir={tmp_path}", "run.name=ft",
        "train.max_steps=2", "train.val_every=0", "train.checkpoint_every=2",
        "train.log_every=1", "train.trackers=[jsonl]", "data.segment_seconds=0.02",
        "data.batch_size=2", "data.sample_rate=24000", "task.params.warmup_steps=0",
        "model.discriminators=[{name: core.msd, params: {scales: 1, width: 4, layers: 2, "
        "max_width: 8}}]"], registry=registry)
    start = load(imported, registry=registry).state_dict()
    saved = dict(os.environ)
    try:
        trainer = Trainer(cfg, registry=registry)
        trainer.setup()
        model = trainer.engines["generator"].module
        for key, value in model.state_dict().items():  # the run starts from the import
            assert torch.equal(value, start[key]), key
        assert bool(model.quantizer.codebooks[0].initialized)  # no k-means re-init
        logs = trainer.fit()
    finally:
        distributed.teardown()
        os.environ.clear()
        os.environ.update(saved)
    assert math.isfinite(logs["loss/total"])
    tuned = load(export_run(tmp_path / "ft", tmp_path / "export"), registry=registry)
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, start[k])]
    assert any("encoder" in k for k in changed)  # it trained from there


def test_init_from_another_architecture_names_tensors(imported, registry):
    cfg = load_config("soundstream.tiny", [f"model.init={imported}"], registry=registry)
    with pytest.raises(WeightsMismatchError, match=r"model.init .*model.safetensors"):
        build_task(cfg, registry).build_model()
