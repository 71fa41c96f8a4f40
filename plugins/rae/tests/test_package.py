"""audio-plugin-rae as a distribution (needs only audio-core beside it)."""

from audio_core.testing import PluginUnderTest


def test_package_contract():
    PluginUnderTest("rae", "audio-plugin-rae", "audio_plugin_rae.hooks").check_package()
