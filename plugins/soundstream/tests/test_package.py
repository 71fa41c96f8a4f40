"""audio-plugin-soundstream as a distribution (needs only audio-core beside it)."""

from audio_core.testing import PluginUnderTest


def test_package_contract():
    PluginUnderTest("soundstream", "audio-plugin-soundstream",
                    "audio_plugin_soundstream.hooks").check_package()
