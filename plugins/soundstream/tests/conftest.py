"""Shared fixtures: the plugin loaded the way audio-core loads it (installed or not)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from audio_core.testing import PluginUnderTest  # noqa: E402

PLUGIN = PluginUnderTest("soundstream", "audio-plugin-soundstream",
                         "audio_plugin_soundstream.hooks")


def tiny_encodec(folder: Path) -> Path:
    """A tiny random transformers ``EncodecModel`` (24 kHz layout, usable codebooks) saved
    with ``save_pretrained`` to ``folder``; returns ``folder``."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.EncodecConfig(hidden_size=8, num_filters=4, upsampling_ratios=[4, 2],
                                        codebook_size=16, num_lstm_layers=1,
                                        target_bandwidths=[12.0, 24.0])
    ref = transformers.EncodecModel(config)
    with torch.no_grad():
        for layer in ref.quantizer.layers:
            layer.codebook.embed.normal_(0, 0.1)
            layer.codebook.embed_avg.copy_(layer.codebook.embed)
            layer.codebook.cluster_size.fill_(4.0)
    ref.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def registry():
    """A registry with audio-core's built-ins and this plugin only."""
    pm = PLUGIN.load()
    info = pm.plugins["soundstream"]
    assert info.status == "loaded", info.reason
    return pm.registry


def pytest_configure(config):
    """DeepSpeed's JIT-built ops are cached per Python environment (tox sets its own
    folder): builds record absolute source paths, so environments sharing one cache
    rebuild each other's ops."""
    import os
    import sys
    from pathlib import Path

    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
