"""Scanning audio folders: symlink loops and second links to a folder are followed once and
reported, files reached twice count once, unreadable folders and files are reported with
the reason (permission denied), never skipped without a word."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_core.audio.io import AudioFileError, audio_info, load_audio
from audio_core.data.folders import FolderDataset
from audio_core.data.index import find_audio_files, walk_audio_files
from audio_core.data.inspect import inspect_path


def tone(path: Path, seconds: float = 0.3, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.ones(int(seconds * rate), np.float32), rate)
    return path


@pytest.fixture
def looped(tmp_path):
    root = tmp_path / "corpus"
    tone(root / "speaker" / "a.wav")
    (root / "speaker" / "again").symlink_to(root / "speaker")  # a loop
    (root / "mirror").symlink_to(root / "speaker")  # a second link, not a loop
    (root / "b.wav").symlink_to(root / "speaker" / "a.wav")  # a link to a file
    return root


def test_a_symlink_loop_indexes_each_file_once_and_is_reported(looped, caplog):
    files, problems = walk_audio_files(looped)
    assert files == [looped / "speaker" / "a.wav"]  # reached three ways, listed once
    reasons = {Path(p.path).name: p.reason for p in problems}
    assert reasons["again"].startswith("symlink loop: points back to")
    assert reasons["mirror"].startswith("same folder as")
    find_audio_files(looped)
    assert "symlink loop" in caplog.text


def test_datasets_and_inspect_report_the_loop(looped, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_CORE_CACHE_DIR", str(tmp_path / "cache"))
    dataset = FolderDataset(looped, sample_rate=8000, segment_seconds=0.1)
    assert len(dataset) == 1
    assert any("symlink loop" in b.reason for b in dataset.bad_files)
    report = inspect_path(looped)
    assert len(report.files) == 1
    assert any("symlink loop" in b.reason for b in report.bad_files)


def deny(monkeypatch, *paths: Path) -> None:
    """Make ``paths`` unreadable: chmod, and (root ignores permissions) the same answer
    from the system calls the scanner and the audio reader use."""
    denied = {os.path.abspath(p) for p in paths}
    for p in paths:
        os.chmod(p, 0)
    real_scandir, real_access = os.scandir, os.access

    def scandir(path="."):
        if os.path.abspath(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def access(path, mode, **kw):
        return False if os.path.abspath(path) in denied else real_access(path, mode, **kw)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "access", access)


def test_an_unreadable_sub_folder_is_reported(tmp_path, monkeypatch):
    root = tmp_path / "corpus"
    tone(root / "open" / "a.wav")
    tone(root / "locked" / "b.wav")
    try:
        deny(monkeypatch, root / "locked")
        files, problems = walk_audio_files(root)
        report = inspect_path(root, cache=False)
    finally:
        os.chmod(root / "locked", 0o755)
    assert files == [root / "open" / "a.wav"]
    assert [(Path(p.path).name, p.reason) for p in problems] == [
        ("locked", "cannot list folder (Permission denied); its files were not scanned")]
    assert [Path(b.path).name for b in report.bad_files] == ["locked"]


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    path = tone(tmp_path / "secret.wav")
    try:
        deny(monkeypatch, path)
        with pytest.raises(AudioFileError, match="permission denied"):
            audio_info(path)
        with pytest.raises(AudioFileError, match="permission denied"):
            load_audio(path)
        report = inspect_path(tmp_path, cache=False)
    finally:
        os.chmod(path, 0o644)
    assert [b.reason for b in report.bad_files] == [
        "permission denied: this user cannot read the file (check its permissions)"]


def test_an_unreadable_dataset_root_is_a_clear_error(tmp_path, monkeypatch):
    from audio_core.data.base import DatasetError

    root = tmp_path / "corpus"
    tone(root / "a.wav")
    try:
        deny(monkeypatch, root)
        with pytest.raises(DatasetError, match="permission denied"):
            FolderDataset(root, sample_rate=8000)
    finally:
        os.chmod(root, 0o755)
