"""audio-plugin-vae as a distribution (needs only audio-core beside it)."""

from audio_core.testing import PluginUnderTest


def test_package_contract():
    PluginUnderTest("vae", "audio-plugin-vae", "audio_plugin_vae.hooks").check_package()
