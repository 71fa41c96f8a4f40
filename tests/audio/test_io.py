"""audio_core.audio.io: round trips, resampling/channels on load, atomic saves, clear errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_core.audio.io import AudioFileError, AudioInfo, audio_info, load_audio, save_audio
from audio_core.errors import AudioCoreError

SR = 16000


def _signal(channels: int = 2, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return torch.stack([0.5 * torch.sin(2 * torch.pi * (220 * (c + 1)) * t)
                        for c in range(channels)])


def _mp3_supported() -> bool:
    return "MP3" in sf.available_formats()


@pytest.mark.parametrize(("ext", "atol"), [
    (".wav", 1e-4), (".flac", 1e-4), (".ogg", 0.05),
    pytest.param(".mp3", 0.1, marks=pytest.mark.skipif(not _mp3_supported(),
                                                       reason="libsndfile without MP3")),
])
def test_round_trip(tmp_path, ext, atol):
    x = _signal()
    path = save_audio(tmp_path / f"a{ext}", x, SR)
    y, sr = load_audio(path)
    assert sr == SR and y.dtype == torch.float32 and y.shape[0] == 2
    if ext in (".wav", ".flac"):
        assert y.shape == x.shape
        torch.testing.assert_close(y, x, atol=atol, rtol=0)
    else:  # lossy codecs: same length (mp3 may add decoder padding), similar energy
        n = min(y.shape[1], x.shape[1])
        assert abs(y.shape[1] - x.shape[1]) < SR // 10
        assert abs(y[:, :n].pow(2).mean() - x.pow(2).mean()) < atol
    info = audio_info(path)
    assert isinstance(info, AudioInfo)
    assert (info.sample_rate, info.channels) == (SR, 2)
    assert info.duration == pytest.approx(info.frames / SR)
    assert info.format == ext[1:].upper()


def test_save_float_subtype_and_mono_1d(tmp_path):
    x = torch.linspace(-0.9, 0.9, 1000)
    path = save_audio(tmp_path / "m.wav", x, 8000, subtype="FLOAT")
    y, sr = load_audio(path)
    assert y.shape == (1, 1000) and sr == 8000
    torch.testing.assert_close(y[0], x)


def test_save_clips_instead_of_wrapping(tmp_path):
    x = torch.tensor([[0.0, 1.5, -3.0, 0.5]])
    y, _ = load_audio(save_audio(tmp_path / "c.wav", x, SR))
    assert y[0, 1] == pytest.approx(1.0, abs=1e-4) and y[0, 2] == pytest.approx(-1.0, abs=1e-4)
    # a float file keeps values beyond full scale
    y, _ = load_audio(save_audio(tmp_path / "f.wav", x, SR, subtype="FLOAT"))
    torch.testing.assert_close(y, x)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = save_audio(tmp_path / "sub" / "a.wav", _signal(), SR)
    before = path.read_bytes()

    def broken_write(*args, **kwargs):
        with open(args[0], "wb") as f:  # a partial temp file, then failure
            f.write(b"RIFF")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sf, "write", broken_write)
    with pytest.raises(AudioFileError, match="disk full"):
        save_audio(path, _signal(1), SR)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["a.wav"]


def test_save_rejects_nan_and_unknown_extension(tmp_path):
    with pytest.raises(AudioFileError, match="NaN"):
        save_audio(tmp_path / "n.wav", torch.tensor([0.0, float("nan")]), SR)
    with pytest.raises(AudioFileError, match=r"unsupported format '\.xyz'"):
        save_audio(tmp_path / "n.xyz", torch.zeros(10), SR)
    assert not list(tmp_path.iterdir())


def test_load_resample_channels_and_region(tmp_path):
    path = save_audio(tmp_path / "s.wav", _signal(2, 1.0), SR)
    y, sr = load_audio(path, sample_rate=24000, channels=1)
    assert sr == 24000 and y.shape == (1, 24000)
    y, _ = load_audio(path, offset=4000, frames=2000)
    full, _ = load_audio(path)
    torch.testing.assert_close(y, full[:, 4000:6000])
    mono = save_audio(tmp_path / "m.flac", _signal(1), SR)
    assert load_audio(mono, channels=2)[0].shape == (2, SR // 2)


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: None, "file not found"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)), "corrupt"),
])
def test_errors_name_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    for fn in (audio_info, load_audio):
        with pytest.raises(AudioFileError, match=reason) as err:
            fn(path)
        assert str(path) in str(err.value)
        assert isinstance(err.value, AudioCoreError)
        assert err.value.path == str(path)


def test_nan_and_no_frames_and_unsupported(tmp_path):
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2], np.float32), SR, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="NaN/Inf"):
        load_audio(nan)
    empty = tmp_path / "zero.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), SR)
    with pytest.raises(AudioFileError, match="no frames"):
        audio_info(empty)
    with pytest.raises(AudioFileError, match="no frames"):
        load_audio(empty)
    odd = tmp_path / "notes.txt"
    odd.write_text("not audio at all " * 20)
    with pytest.raises(AudioFileError, match=r"unsupported format '\.txt'"):
        audio_info(odd)
    with pytest.raises(AudioFileError, match="directory"):
        load_audio(tmp_path)


def test_load_incompatible_channels(tmp_path):
    path = save_audio(tmp_path / "six.wav", torch.zeros(6, 100) + 0.1, SR)
    with pytest.raises(AudioFileError, match="6 channels"):
        load_audio(path, channels=2)
