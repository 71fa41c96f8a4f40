"""Fixtures: the plugin loaded beside audio-core's built-ins only, and tiny models."""

from __future__ import annotations

import pytest
import torch

from audio_core.testing import PluginUnderTest

PLUGIN = PluginUnderTest("bsq", "audio-plugin-bsq", "audio_plugin_bsq.hooks")


@pytest.fixture(scope="session")
def manager():
    pm = PLUGIN.load()
    assert pm.plugins["bsq"].status == "loaded", pm.plugins["bsq"].reason
    return pm


@pytest.fixture(scope="session")
def registry(manager):
    return manager.registry


def tiny_model(n_mels: int = 16, bits: int = 8, max_frames: int = 32, conv: bool = True,
               checkpointing: bool = False, seed: int = 0):
    """A BSQTokenizer with a 2-layer 32-wide transformer (4x8 patches)."""
    from audio_plugin_bsq.decoder import SpectrogramDecoder
    from audio_plugin_bsq.encoder import SpectrogramEncoder
    from audio_plugin_bsq.model import BSQTokenizer
    from audio_plugin_bsq.quantizer import BinarySphericalQuantizer
    from audio_plugin_bsq.vocoder import GriffinLimVocoder

    torch.manual_seed(seed)
    kw = dict(n_mels=n_mels, max_frames=max_frames, patch_time=4, patch_freq=8, width=32,
              depth=2, heads=2, conv_module=conv, conv_kernel=5, checkpointing=checkpointing)
    return BSQTokenizer(SpectrogramEncoder(**kw), BinarySphericalQuantizer(bits, 32),
                        SpectrogramDecoder(**kw), n_fft=256, hop_length=64, n_mels=n_mels,
                        vocoder=GriffinLimVocoder(sample_rate=16000, n_fft=256, hop_length=64,
                                                  n_mels=n_mels, n_iter=4, nnls_iter=5))


@pytest.fixture
def model():
    return tiny_model()


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def pytest_configure(config):
    """DeepSpeed's JIT-built ops are cached per Python environment (tox sets its own
    folder): builds record absolute source paths, so environments sharing one cache
    rebuild each other's ops."""
    import os
    import sys
    from pathlib import Path

    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
