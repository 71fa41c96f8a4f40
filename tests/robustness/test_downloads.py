"""Nothing is downloaded unless ``AUDIO_CORE_ALLOW_DOWNLOADS=1``: a ``pretrained`` value that
is not an existing local folder is an error naming the key and the value, and the CLI puts
the Hugging Face libraries offline. (The rae encoders' use of it, with sockets that fail
the test on any connection: plugins/rae/tests/test_encoders.py.)"""

from __future__ import annotations

import os

import pytest

from audio_core.cli import main
from audio_core.models.pretrained import PretrainedNotLocalError, offline, resolve_pretrained

KEY = "model.encoder.params.pretrained"


def test_a_local_folder_is_used_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("AUDIO_CORE_ALLOW_DOWNLOADS", raising=False)
    assert resolve_pretrained(tmp_path, KEY) == (str(tmp_path), True)


@pytest.mark.parametrize("value", ["facebook/wav2vec2-base", "/no/such/folder", "file"])
def test_anything_else_is_an_error_naming_key_and_value(tmp_path, monkeypatch, value):
    monkeypatch.delenv("AUDIO_CORE_ALLOW_DOWNLOADS", raising=False)
    if value == "file":
        value = str(tmp_path / "weights.bin")
        (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(PretrainedNotLocalError) as info:
        resolve_pretrained(value, KEY)
    message = str(info.value)
    assert message.startswith(f"{KEY}: '{value}' is ") and "\n" not in message
    assert "AUDIO_CORE_ALLOW_DOWNLOADS=1" in message and info.value.path == KEY


def test_allowed_downloads_pass_the_value_through(monkeypatch):
    monkeypatch.setenv("AUDIO_CORE_ALLOW_DOWNLOADS", "1")
    assert resolve_pretrained("facebook/wav2vec2-base", KEY) == ("facebook/wav2vec2-base",
                                                                  False)


def test_offline_sets_and_restores_the_hub_flags(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "")  # restored after the test
    monkeypatch.delenv("HF_HUB_OFFLINE")
    before = constants.HF_HUB_OFFLINE
    with offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True
    assert "HF_HUB_OFFLINE" not in os.environ and before == constants.HF_HUB_OFFLINE


@pytest.mark.parametrize("allowed", [False, True])
def test_the_cli_runs_offline_unless_downloads_are_allowed(monkeypatch, capsys, allowed):
    monkeypatch.setenv("HF_HUB_OFFLINE", "")  # restored after the test
    monkeypatch.delenv("HF_HUB_OFFLINE")
    if allowed:
        monkeypatch.setenv("AUDIO_CORE_ALLOW_DOWNLOADS", "1")
    else:
        monkeypatch.delenv("AUDIO_CORE_ALLOW_DOWNLOADS", raising=False)
    assert main(["plugins", "--json"]) == 0
    capsys.readouterr()
    assert os.environ.get("HF_HUB_OFFLINE") == (None if allowed else "1")
