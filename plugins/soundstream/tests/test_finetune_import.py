"""``model.init``: a training run starts from an imported EnCodec's weights (fine-tuning),
and refuses weights of another architecture with an error naming the tensors."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from conftest import tiny_encodec  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from audio_core import distributed  # noqa: E402
from audio_core.config import load_config  # noqa: E402
from audio_core.engine.export import export_run  # noqa: E402
from audio_core.engine.imports import import_model  # noqa: E402
from audio_core.engine.trainer import Trainer, build_task  # noqa: E402
from audio_core.errors import ConfigError  # noqa: E402
from audio_core.models.loading import load  # noqa: E402
from audio_core.storage.checkpoint import CheckpointError  # noqa: E402
from audio_core.storage.weights_check import WeightsMismatchError  # noqa: E402


@pytest.fixture
def imported(tmp_path):
    return import_model(tiny_encodec(tmp_path / "hf"), tmp_path / "imported")


def finetune_config(init, tmp_path, registry, name, *extra):
    return load_config(str(Path(init) / "config.yaml"), [
        f"model.init={init}", f"run.output_dir={tmp_path}", f"run.name={name}",
        "train.max_steps=2", "train.val_every=0", "train.checkpoint_every=2",
        "train.log_every=1", "train.trackers=[jsonl]", "data.segment_seconds=0.02",
        "data.batch_size=2", "data.sample_rate=24000", "task.params.warmup_steps=0",
        f"model.discriminators=[{DISC}]", *extra], registry=registry)


DISC = "{name: core.msd, params: {scales: 1, width: 4, layers: 2, max_width: 8}}"


@pytest.fixture
def process_group():
    """Training sets up a (1-rank) process group and its environment: undone after."""
    saved = dict(os.environ)
    yield
    distributed.teardown()
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.integration
def test_finetune_starts_from_imported_weights(tmp_path, imported, registry, process_group):
    cfg = finetune_config(imported, tmp_path, registry, "ft")
    start = load(imported, registry=registry).state_dict()
    trainer = Trainer(cfg, registry=registry)
    trainer.setup()
    model = trainer.engines["generator"].module
    for key, value in model.state_dict().items():  # the run starts from the import
        assert torch.equal(value, start[key]), key
    assert bool(model.quantizer.codebooks[0].initialized)  # no k-means re-init
    logs = trainer.fit()
    assert math.isfinite(logs["loss/total"])
    tuned = load(export_run(tmp_path / "ft", tmp_path / "export"), registry=registry)
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, start[k])]
    assert any("encoder" in k for k in changed)  # it trained from there
    assert not (tmp_path / "export" / "discriminators.safetensors").exists()  # opt-in


@pytest.mark.integration
def test_finetune_continues_from_exported_discriminators(tmp_path, imported, registry,
                                                         process_group):
    first = Trainer(finetune_config(imported, tmp_path, registry, "ft"), registry=registry)
    first.fit()
    trained = first.engines["discriminator"].full_state_dict()
    export = export_run(tmp_path / "ft", tmp_path / "export", with_discriminators=True)
    info = json.loads((export / "export.json").read_text())["discriminators"]
    assert info["file"] == "discriminators.safetensors" and info["tensors"] == len(trained)
    assert info["config"][0]["name"] == "core.msd"
    assert not any(k.startswith("discriminator") for k in load(export, registry=registry)
                   .state_dict())  # inference never builds them

    second = Trainer(finetune_config(export, tmp_path, registry, "ft2",
                                     "train.init_discriminators=true"), registry=registry)
    second.setup()
    start = second.engines["discriminator"].module.state_dict()
    assert start.keys() == trained.keys()
    for key, value in trained.items():
        assert torch.equal(start[key], value), key
    from_run = Trainer(finetune_config(tmp_path / "ft", tmp_path, registry, "ft4",
                                       "train.init_discriminators=true"), registry=registry)
    from_run.setup()  # a run folder: its newest checkpoint's discriminators
    for key, value in from_run.engines["discriminator"].module.state_dict().items():
        assert torch.equal(value, trained[key]), key
    fresh = Trainer(finetune_config(export, tmp_path, registry, "ft3"), registry=registry)
    fresh.setup()  # without the flag: fresh discriminators
    assert any(not torch.equal(v, trained[k])
               for k, v in fresh.engines["discriminator"].module.state_dict().items())


def test_init_discriminators_refuses_other_discriminators(tmp_path, imported, registry):
    other = "{name: core.msd, params: {scales: 1, width: 8, layers: 2, max_width: 8}}"
    cfg = finetune_config(imported, tmp_path, registry, "x", "train.init_discriminators=true")
    with pytest.raises(CheckpointError, match=r"discriminators.safetensors does not exist"):
        build_task(cfg, registry).build_modules()  # an import has no discriminators
    fake = tmp_path / "fake"
    shutil.copytree(imported, fake)
    info = json.loads((fake / "export.json").read_text())
    info["discriminators"] = {"config": [{"name": "core.msd", "params": {
        "scales": 1, "width": 4, "layers": 2, "max_width": 8}}]}
    (fake / "export.json").write_text(json.dumps(info))
    save_file({"x": torch.zeros(1)}, str(fake / "discriminators.safetensors"))
    cfg = finetune_config(fake, tmp_path, registry, "y", "train.init_discriminators=true",
                          f"model.discriminators=[{other}]")
    with pytest.raises(WeightsMismatchError,
                       match=r"model.discriminators\[0\].params.width: 4 -> 8"):
        build_task(cfg, registry).build_modules()
    cfg = finetune_config(fake, tmp_path, registry, "z", "train.init_discriminators=true")
    with pytest.raises(WeightsMismatchError, match=r"train.init_discriminators .*not in the"):
        build_task(cfg, registry).build_modules()


def test_init_discriminators_needs_model_init(registry):
    cfg = load_config("soundstream.tiny", ["train.init_discriminators=true"], registry=registry)
    with pytest.raises(ConfigError, match=r"needs model.init"):
        build_task(cfg, registry).build_modules()


def test_init_from_another_architecture_names_tensors(imported, registry):
    cfg = load_config("soundstream.tiny", [f"model.init={imported}"], registry=registry)
    with pytest.raises(WeightsMismatchError, match=r"model.init .*model.safetensors"):
        build_task(cfg, registry).build_model()
