"""audio-plugin-soundstream as a distribution (needs only audio-core beside it), and its
models against the core model contracts."""

import pytest

from audio_core.testing import PluginUnderTest

PLUGIN = PluginUnderTest("soundstream", "audio-plugin-soundstream",
                         "audio_plugin_soundstream.hooks")
#: the presets' wiring at a tiny size
SMALL = ("model.encoder.params.width=4", "model.decoder.params.width=4",
         "model.encoder.params.lstm_layers=0", "model.decoder.params.lstm_layers=0")


def test_package_contract():
    PLUGIN.check_package()


@pytest.mark.parametrize("preset", ["soundstream.tiny", "soundstream.16khz_speech",
                                    "soundstream.24khz", "soundstream.demo_6kbps"])
def test_presets_build_models_that_meet_the_codec_contract(preset):
    overrides = () if preset in ("soundstream.tiny", "soundstream.demo_6kbps") else SMALL
    assert PLUGIN.check_model(preset, overrides, seconds=0.2) == ["autoencoder", "codec",
                                                                  "reconstruct"]


def test_a_user_config_can_extend_the_speech_preset_with_a_folder(tmp_path):
    """What the 16 kHz speech preset's own comment tells users to do."""
    import numpy as np
    import soundfile as sf

    from audio_core.config import load_config

    folder = tmp_path / "my_speech"
    folder.mkdir()
    for i in range(2):
        sf.write(folder / f"utt{i}.wav", 0.1 * np.ones(16000, np.float32), 16000)
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"extends: soundstream.16khz_speech\ndata:\n  train:\n"
                    f"    name: core.folder\n    params: {{root: {folder}}}\n"
                    f"  val:\n    name: core.folder\n    params: {{root: {folder}}}\n")
    cfg = load_config(mine, check_params=True)
    assert cfg.data.train.params == {"root": str(folder)}
    assert cfg.data.val.params == {"root": str(folder)}
    assert cfg.data.sample_rate == 16000
