"""The custom-encoder story: a third-party package (tests/plugins/audio-plugin-myencoder)
registers its own frozen encoder with one hook and trains an RAE decoder on it from a
config. The package is used installed when it is, else from this source tree."""

from __future__ import annotations

import importlib.metadata as md
import sys
from pathlib import Path

import pytest
import torch
from conftest import PLUGIN, noise

from audio_core.config import load_config
from audio_core.plugins import PluginManager
from audio_core.testing import PluginUnderTest

EXAMPLE = Path(__file__).resolve().parents[3] / "tests" / "plugins" / "audio-plugin-myencoder"
MYENCODER = PluginUnderTest("myencoder", "audio-plugin-myencoder",
                            "audio_plugin_myencoder.hooks")


@pytest.fixture(scope="module")
def both():
    try:
        md.distribution("audio-plugin-myencoder")
    except md.PackageNotFoundError:
        if not EXAMPLE.is_dir():
            pytest.fail(f"the example package is neither installed nor at {EXAMPLE}: "
                        f"pip install --no-deps tests/plugins/audio-plugin-myencoder",
                        pytrace=False)
        sys.path.insert(0, str(EXAMPLE))
    pm = PluginManager(entry_points=[PLUGIN.entry_point(), MYENCODER.entry_point()],
                       environ={}).load()
    for name in ("rae", "myencoder"):
        assert pm.plugins[name].status == "loaded", pm.plugins[name].reason
    return pm


def test_one_hook_registers_the_encoder(both):
    info = both.plugins["myencoder"]
    assert info.hooks == ("audio_core_register_encoders",)
    assert info.components == ("myencoder.mel_projection",)
    encoder = both.registry.build("encoder", "myencoder.mel_projection", {"max_duration": 0.5},
                                  context={"sample_rate": 32000, "channels": 2})
    assert (encoder.hidden_size, encoder.patch_size) == (48, 160)  # the RAE names
    assert (encoder.dim, encoder.hop_length, encoder.window_frames) == (48, 320, 50)
    assert encoder(noise(2, 2, 10000)).shape == (2, 48, 32)  # ceil(10000 / 320) frames


def test_an_rae_decoder_trains_on_it_from_the_config(both, tmp_path):
    from safetensors.torch import load_file

    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.models.loading import load

    cfg = load_config(EXAMPLE / "rae_myencoder.yaml", [
        f"run.output_dir={tmp_path}", "train.max_steps=3", "train.checkpoint_every=3",
        "train.log_every=1", "data.batch_size=2", "data.train.params.num_items=8",
        "data.segment_seconds=0.5", "model.decoder.params.depth=1"],
        registry=both.registry, check_params=True)
    trainer = Trainer(cfg, registry=both.registry)
    trainer.fit()
    assert trainer.step == 3
    export = export_run(tmp_path / "rae_myencoder", tmp_path / "export",
                        registry=both.registry)
    assert all(k.startswith(("decoder.", "normalizer."))
               for k in load_file(str(export / "model.safetensors")))
    model = load(export, registry=both.registry)
    assert type(model.encoder_module()).__name__ == "MelProjectionEncoder"
    trained = trainer.task.model.eval()
    wave = noise(1, 1, 12000)
    assert torch.equal(model.reconstruct(wave), trained.reconstruct(wave))
    assert model.reconstruct(wave).shape == (1, 1, 12000)
