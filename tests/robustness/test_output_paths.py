"""``reconstruct``/``encode``/``decode`` never overwrite their input (same path, a link to
it, a report file landing on it) or a file that is not theirs, and reject unusable chunk,
context and bitrate values the same way in every command."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_core.inference.chunking import ChunkingError, check_chunking

pytestmark = pytest.mark.integration


@pytest.fixture
def clip(tmp_path, helpers):
    path = tmp_path / "speech.wav"
    t = np.arange(2400) / helpers.RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), helpers.RATE)
    return path


def test_reconstruct_onto_its_input_is_refused(exported, clip, cli, capsys):
    before = clip.read_bytes()
    assert cli(["reconstruct", exported, clip, clip]) == 1
    assert "is the same file as IN" in capsys.readouterr().err
    assert clip.read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_to_the_input_is_the_input(exported, clip, cli, tmp_path, link):
    out = tmp_path / "out.wav"
    (os.symlink if link == "symlink" else os.link)(clip, out)
    before = clip.read_bytes()
    assert cli(["reconstruct", exported, clip, out, "--no-report"]) == 1
    assert clip.read_bytes() == before


def test_a_report_file_never_lands_on_the_input(exported, clip, cli, capsys, tmp_path):
    """IN named x.json (a WAV inside; audio is recognised by content), OUT x.wav: the
    .json report would replace IN."""
    source = clip.rename(tmp_path / "take.json")
    before = source.read_bytes()
    assert cli(["reconstruct", exported, source, tmp_path / "take.wav"]) == 1
    assert "OUT's .json report" in capsys.readouterr().err
    assert source.read_bytes() == before
    assert cli(["reconstruct", exported, source, tmp_path / "take.wav", "--no-report"]) == 0


def test_encode_onto_its_input_is_refused(exported, clip, cli, capsys):
    before = clip.read_bytes()
    assert cli(["encode", exported, clip, clip]) == 1
    assert "same file as IN" in capsys.readouterr().err
    assert clip.read_bytes() == before


def test_encode_never_replaces_audio_with_tokens(exported, clip, cli, capsys, tmp_path):
    other = tmp_path / "other.wav"
    sf.write(other, np.zeros(100, np.float32), 8000)
    before = other.read_bytes()
    assert cli(["encode", exported, clip, other]) == 1
    assert "audio extension" in capsys.readouterr().err
    assert other.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    assert cli(["encode", exported, clip, notes]) == 1
    assert "is not a token file" in capsys.readouterr().err
    assert notes.read_text() == "mine"
    tokens = tmp_path / "speech.tokens"
    assert cli(["encode", exported, clip, tokens]) == 0
    assert cli(["encode", exported, clip, tokens]) == 0  # re-encoding replaces its own file


def test_decode_onto_its_input_is_refused(exported, clip, cli, tmp_path):
    tokens = tmp_path / "speech.tokens"
    assert cli(["encode", exported, clip, tokens]) == 0
    before = tokens.read_bytes()
    assert cli(["decode", exported, tokens, tokens]) == 1
    assert tokens.read_bytes() == before


@pytest.mark.parametrize("command", ["reconstruct", "encode", "decode"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "ten"])
def test_chunk_seconds_is_checked_alike_everywhere(exported, clip, capsys, command, value,
                                                   tmp_path):
    from audio_core.cli import main

    out = tmp_path / ("x.tokens" if command == "encode" else "x.wav")
    with pytest.raises(SystemExit) as exit_:
        main([command, str(exported), str(clip), str(out), "--chunk-seconds", value])
    assert exit_.value.code == 2
    assert "--chunk-seconds" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("option", "value"), [("--context-seconds", "-0.5"),
                                               ("--context-seconds", "nan"),
                                               ("--bandwidth", "nan"), ("--bandwidth", "-3"),
                                               ("--bandwidth", "inf"), ("--n-quantizers", "0")])
def test_other_numbers_are_checked_before_any_work(exported, clip, capsys, option, value,
                                                   tmp_path):
    from audio_core.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["encode", str(exported), str(clip), str(tmp_path / "x.tokens"), option, value])
    assert exit_.value.code == 2 and option in capsys.readouterr().err


def test_the_python_functions_share_the_check(exported, clip):
    from audio_core.inference.codec import decode_audio, encode_audio
    from audio_core.inference.reconstruct import reconstruct
    from audio_core.models.loading import load

    model = load(exported)
    audio = torch.zeros(1, 2400)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ChunkingError):
            reconstruct(model, audio, chunk_seconds=bad)
        with pytest.raises(ChunkingError):
            encode_audio(model, audio, chunk_seconds=bad)
        with pytest.raises(ChunkingError):
            decode_audio(model, torch.zeros(2, 10, dtype=torch.long), chunk_seconds=bad)
    with pytest.raises(ChunkingError, match=r"longer than the 0\.1 s"):
        reconstruct(model, audio, chunk_seconds=0.05)  # shorter than the crossfade
    check_chunking(0.5, 0.0)  # zero context is fine


def test_decode_refuses_tokens_of_another_channel_count(exported, clip, tmp_path):
    import dataclasses

    from audio_core.inference.codec import CodecError, check_tokens, encode_file
    from audio_core.models.loading import load

    model = load(exported)
    header = encode_file(model, clip, tmp_path / "x.tokens", show_progress=False)
    check_tokens(model, header)  # its own file passes
    with pytest.raises(CodecError, match=r"2 channel\(s\) in the file, 1 in the model"):
        check_tokens(model, dataclasses.replace(header, channels=2))
