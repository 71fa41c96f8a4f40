"""audio-plugin-rae as a distribution (needs only audio-core beside it)."""

from __future__ import annotations

from conftest import PLUGIN

PRESETS = {"rae.wav2vec2_base", "rae.hubert_base", "rae.spectrogram_dinov2",
           "rae.wav2vec2_tiny", "rae.hubert_tiny", "rae.spectrogram_tiny", "rae.dit_tiny",
           "rae.dit_xl", "rae.ditdh_xl"}


def test_package_contract():
    PLUGIN.check_package()


def test_listing_imports_neither_torch_nor_transformers():
    assert PLUGIN.modules_imported_by_hooks("torch", "transformers") == []


def test_components_and_presets(manager):
    info = manager.plugins["rae"]
    assert set(info.components) >= {
        "rae.autoencoder", "rae.wav2vec2", "rae.hubert", "rae.spectrogram", "rae.vit",
        "rae.griffin_lim", "rae.dit", "rae.mel_l1"}
    assert {name for name in manager.registry.names("preset") if name.startswith("rae.")} \
        == PRESETS
