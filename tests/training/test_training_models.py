"""Exports are whole inference models: loading builds the model alone (never a task, loss or
discriminator), and a frozen-encoder export reconstructs audio from a waveform."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

import audio_core
from audio_core.cli import main
from audio_core.components.discriminators import WaveformDiscriminator
from audio_core.components.losses import WaveformL1
from audio_core.plugins import get_registry

pytestmark = pytest.mark.integration

CLIP = "tests/data/clips/speech/en_22k.wav"
ARMED = {"on": False}


class ExplodingLoss(WaveformL1):
    """An L1 loss whose constructor raises once armed."""

    def __init__(self) -> None:
        if ARMED["on"]:
            raise RuntimeError("a loss was constructed while loading an export")
        super().__init__()


class ExplodingDiscriminator(WaveformDiscriminator):
    def __init__(self, channels: int = 1) -> None:
        if ARMED["on"]:
            raise RuntimeError("a discriminator was constructed while loading an export")
        super().__init__(channels=channels, width=4, layers=2)


@pytest.fixture
def exploding():
    registry = get_registry()
    if ("loss", "probe.boom") not in registry:
        registry.view("loss", "probe").register("boom", ExplodingLoss)
        registry.view("discriminator", "probe").register("boom", ExplodingDiscriminator)
    ARMED["on"] = False
    yield
    ARMED["on"] = False


def test_loading_an_export_never_builds_a_loss_or_discriminator(tmp_path, helpers, in_process,
                                                                  exploding):
    config = helpers.write_config(
        tmp_path, run={"output_dir": str(tmp_path), "name": "gan"},
        task={"name": "core.adversarial", "params": {"warmup_steps": 0}},
        train={"max_steps": 2, "checkpoint_every": 2, "log_every": 1, "val_every": 0,
               "trackers": ["jsonl"]})
    in_process(config, ["model.losses=[{name: probe.boom}]",
                        "model.discriminators=[{name: probe.boom}]", "model.quantizer=null",
                        "model.encoder.params.dim=4"])
    run = tmp_path / "gan"
    assert main(["export", str(run), str(tmp_path / "export")]) == 0
    ARMED["on"] = True
    with pytest.raises(RuntimeError, match="constructed while loading"):
        ExplodingLoss()  # armed: any construction would fail the loads below
    for source in (tmp_path / "export", run):
        model = audio_core.load(source)
        assert type(model).__name__ == "AudioAutoencoder"
        assert not any("discriminator" in k for k in model.state_dict())
    assert main(["reconstruct", str(tmp_path / "export"), CLIP,
                 str(tmp_path / "out.wav")]) == 0


def test_frozen_encoder_export_reconstructs_from_a_waveform(tmp_path, helpers, in_process):
    config = helpers.write_config(
        tmp_path, run={"output_dir": str(tmp_path), "name": "frozen"},
        task={"name": "core.frozen_encoder"},
        train={"max_steps": 2, "checkpoint_every": 2, "log_every": 1, "val_every": 0,
               "trackers": ["jsonl"]})
    in_process(config, ["model.quantizer=null", "model.encoder.params.dim=4",
                        "model.params.noise_tau=0.5"])
    export = tmp_path / "export"
    assert main(["export", str(tmp_path / "frozen"), str(export)]) == 0
    keys = sorted(load_file(export / "model.safetensors"))
    assert keys and not any(k.startswith("encoder") for k in keys)
    assert {"normalizer.mean", "normalizer.std"} <= set(keys)
    out = tmp_path / "recon.wav"
    assert main(["reconstruct", str(export), CLIP, str(out)]) == 0
    info = sf.info(str(out))
    model = audio_core.load(export)
    assert info.samplerate == model.sample_rate
    expected = round(sf.info(CLIP).duration * model.sample_rate)
    assert abs(info.frames - expected) <= 1
    # the frozen encoder is rebuilt identically (seeded) at every load
    again = audio_core.load(export)
    for a, b in zip(model.encoder.state_dict().values(), again.encoder.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
