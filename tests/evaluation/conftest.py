from __future__ import annotations

from pathlib import Path

import pytest

SPEECH = Path(__file__).resolve().parents[1] / "data" / "clips" / "speech" / "en_22k.wav"


@pytest.fixture(scope="session")
def speech_clip():
    """The English test clip, mono ``(time,)``, at 16 kHz."""
    from audio_core.audio.io import load_audio

    audio, rate = load_audio(SPEECH, sample_rate=16000, channels=1)
    return audio[0], rate


def make_export(folder: Path, preset: str = "tiny_autoencoder",
                overrides: tuple[str, ...] = ()) -> Path:
    """An export folder of ``preset``'s model, freshly initialised (seeded): config.yaml and
    model.safetensors and export.json, as `audio-core export` writes them."""
    import torch

    from audio_core.config import load_config
    from audio_core.engine.export import save_export
    from audio_core.models.build import build_model
    from audio_core.plugins import get_registry

    cfg = load_config(preset, list(overrides))
    torch.manual_seed(0)
    save_export(build_model(cfg, get_registry()), cfg, folder)
    return folder


CODEC = ("model.quantizer.name=core.rvq",
         "model.quantizer.params={dim: 32, num_codebooks: 4, codebook_size: 16}")


@pytest.fixture(scope="session")
def codec_export(tmp_path_factory):
    """A 4-codebook RVQ conv codec at 16 kHz (4 bits per code, 500 frames/s: 2 kbps per
    codebook), untrained."""
    return make_export(tmp_path_factory.mktemp("codec") / "export", overrides=CODEC)


@pytest.fixture(scope="session")
def eval_data(tmp_path_factory):
    """DATA for eval: speech/ with two short clips, music/ with one."""
    from audio_core.audio.io import load_audio, save_audio

    root = tmp_path_factory.mktemp("evaldata")
    audio, rate = load_audio(SPEECH, sample_rate=16000, channels=1)
    save_audio(root / "speech" / "a.wav", audio[:, :24000], rate)
    save_audio(root / "speech" / "b.flac", audio[:, 24000:48000], rate)
    t = __import__("torch").arange(16000) / 16000
    save_audio(root / "music" / "tone.wav",
               (0.3 * __import__("torch").sin(2 * 3.14159 * 440 * t))[None], 16000)
    return root


@pytest.fixture(scope="session")
def ui_export(codec_export):
    return codec_export


@pytest.fixture(scope="session")
def speech_file(tmp_path_factory):
    """Two seconds of the English test clip at 16 kHz."""
    from audio_core.audio.io import load_audio, save_audio

    audio, rate = load_audio(SPEECH, sample_rate=16000, channels=1)
    path = tmp_path_factory.mktemp("clip") / "speech.wav"
    save_audio(path, audio[:, :32000], rate)
    return path
