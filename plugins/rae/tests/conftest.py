"""Fixtures: the plugin loaded beside audio-core's built-ins only, tiny backbone configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_core.testing import PluginUnderTest

PLUGIN = PluginUnderTest("rae", "audio-plugin-rae", "audio_plugin_rae.hooks")

#: A 2-layer, 32-wide wav2vec2/HuBERT with the base models' conv strides (320 samples/token).
TINY_SPEECH = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
               "intermediate_size": 64, "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16,
               "num_conv_pos_embedding_groups": 4}

#: A 2-layer, 32-wide DINOv2 with 4 registers on 32 px images of 8 px patches (4 x 4 grid).
TINY_DINO = {"model_type": "dinov2_with_registers", "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 2, "mlp_ratio": 2, "image_size": 32, "patch_size": 8,
             "num_register_tokens": 4}


@pytest.fixture(scope="session")
def manager():
    pm = PLUGIN.load()
    assert pm.plugins["rae"].status == "loaded", pm.plugins["rae"].reason
    return pm


@pytest.fixture(scope="session")
def registry(manager):
    return manager.registry


@pytest.fixture(autouse=True, scope="session")
def _threads():
    # one thread: on a busy 2-core machine, two threads per process are many times slower
    torch.set_num_threads(1)


def seeded(build, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def noise(*shape: int, seed: int = 0, scale: float = 0.1) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def class_folder(root: Path, classes: tuple[str, ...], max_seconds: float) -> Path:
    """``root/<class>/{0,1}.wav``: 16 kHz noisy tones of 0.6 to ``max_seconds`` s, a pitch
    of 150 Hz times the class's position."""
    rng = np.random.default_rng(0)
    for c, label in enumerate(classes):
        (root / label).mkdir(parents=True)
        for i in range(2):
            t = np.arange(int(rng.uniform(0.6, max_seconds) * 16000)) / 16000
            wave = 0.3 * np.sin(2 * np.pi * 150 * (c + 1) * t) + 0.05 * rng.standard_normal(
                t.size)
            sf.write(root / label / f"{i}.wav", wave.astype(np.float32), 16000)
    return root
