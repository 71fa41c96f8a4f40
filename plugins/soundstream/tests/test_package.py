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
                                    "soundstream.24khz"])
def test_presets_build_models_that_meet_the_codec_contract(preset):
    overrides = () if preset == "soundstream.tiny" else SMALL
    assert PLUGIN.check_model(preset, overrides, seconds=0.2) == ["autoencoder", "codec",
                                                                  "reconstruct"]
