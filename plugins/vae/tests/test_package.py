"""audio-plugin-vae as a distribution (needs only audio-core beside it), and its models
against the core contracts."""

import pytest

from audio_core.testing import PluginUnderTest

PLUGIN = PluginUnderTest("vae", "audio-plugin-vae", "audio_plugin_vae.hooks")

#: The big presets shrunk to a few channels: same geometry (strides, hop, latent_dim, stereo).
NARROW = ("model.encoder.params.width=4", "model.decoder.params.width=4",
          "model.encoder.params.residual_blocks=1", "model.decoder.params.residual_blocks=1")


def test_package_contract():
    PLUGIN.check_package()


def test_registers_its_components(registry):
    names = {name for kind in ("model", "encoder", "decoder", "quantizer", "loss", "preset")
             for name in registry.names(kind) if name.startswith("vae.")}
    assert names == {"vae.vae", "vae.encoder", "vae.decoder", "vae.gaussian",
                     "vae.dual_channel", "vae.tiny", "vae.24khz", "vae.44khz_stereo"}


def test_tiny_preset_meets_the_autoencoder_contract():
    assert PLUGIN.check_model("vae.tiny") == ["autoencoder", "reconstruct"]


@pytest.mark.parametrize("preset, rate, channels, hop, dim", [
    ("vae.24khz", 24000, 1, 320, 32),
    ("vae.44khz_stereo", 44100, 2, 2048, 64),
])
def test_large_presets_meet_the_contract_at_their_geometry(preset, rate, channels, hop, dim):
    from audio_core.testing_models import build

    assert PLUGIN.check_model(preset, NARROW, seconds=0.1, batch=1) == ["autoencoder",
                                                                          "reconstruct"]
    model = build(preset, NARROW)
    assert (model.sample_rate, model.channels, model.hop_length, model.latent_dim) == \
        (rate, channels, hop, dim)
