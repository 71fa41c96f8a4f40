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
