"""audio-plugin-mousai as a distribution (needs only audio-core beside it)."""

from audio_core.testing import PluginUnderTest


def test_package_contract():
    PluginUnderTest("mousai", "audio-plugin-mousai", "audio_plugin_mousai.hooks").check_package()
