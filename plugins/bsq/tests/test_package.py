"""audio-plugin-bsq as a distribution (needs only audio-core beside it)."""

from audio_core.testing import PluginUnderTest


def test_package_contract():
    PluginUnderTest("bsq", "audio-plugin-bsq", "audio_plugin_bsq.hooks").check_package()
