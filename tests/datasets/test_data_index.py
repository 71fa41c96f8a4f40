"""File index: discovery, header scan, verification and the (path, size, mtime) cache."""

from __future__ import annotations

import logging
import os
import threading

import numpy as np
import pytest
import soundfile as sf

from audio_core.data.folders import FolderDataset
from audio_core.data.index import default_cache_dir, find_audio_files, scan_files


@pytest.fixture
def calls(monkeypatch):
    """Count soundfile.info (header reads) and soundfile.blocks (verification reads)."""
    counts, lock = {"info": 0, "blocks": 0}, threading.Lock()  # scans use a thread pool
    for name in counts:
        real = getattr(sf, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            with lock:
                counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(sf, name, counted)
    return counts


@pytest.fixture
def folder(tmp_path, tone):
    for i in range(5):
        tone(tmp_path / "d" / f"s{i % 2}" / f"{i}.wav", seconds=0.2, sr=8000 * (1 + i % 2))
    return tmp_path / "d"


def test_find_audio_files(tmp_path, tone):
    for name in ["b.wav", "a.FLAC", "sub/c.ogg", ".hidden.wav", ".git/x.wav", "notes.txt"]:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in find_audio_files(tmp_path)]
    assert found == ["a.FLAC", "b.wav", "sub/c.ogg"]
    assert find_audio_files(tmp_path, extensions=["ogg"]) == [tmp_path / "sub" / "c.ogg"]


def test_cache_is_reused(folder, calls, _index_cache):
    first = scan_files(find_audio_files(folder))
    assert calls["info"] == 5 and all(e.ok for e in first)
    assert [e.sample_rate for e in first] == [8000, 8000, 8000, 16000, 16000]
    assert len(list(_index_cache.glob("*.json"))) == 1
    again = scan_files(find_audio_files(folder))
    assert calls["info"] == 5 and again == first  # nothing re-read
    FolderDataset(folder, sample_rate=8000, segment_seconds=0.1, verify=False)
    assert calls["info"] == 5


def test_changed_file_is_rescanned(folder, calls, tone):
    paths = find_audio_files(folder)
    scan_files(paths)
    tone(paths[2], seconds=0.5, sr=8000)  # new size
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # new mtime only
    entries = scan_files(paths)
    assert calls["info"] == 5 + 2
    assert entries[2].frames == 4000


def test_verify_reads_samples_once(folder, calls):
    paths = find_audio_files(folder)
    scan_files(paths)  # headers only
    assert calls["blocks"] == 0
    entries = scan_files(paths, verify=True)  # upgrading to verified re-reads
    assert calls["blocks"] == 5 and all(e.verified for e in entries)
    scan_files(paths, verify=True)
    scan_files(paths)  # a verified entry also serves a header-only scan
    assert calls["blocks"] == 5 and calls["info"] == 10


def test_verify_catches_nan_and_truncation(tmp_path, tone):
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.inf, 0.1], np.float32), 8000, subtype="FLOAT")
    cut = tone(tmp_path / "cut.wav", seconds=1.0)
    cut.write_bytes(cut.read_bytes()[:1000])  # truncated: the header claims 16000 frames
    plain = scan_files([nan, cut])
    assert plain[0].ok
    checked = scan_files([nan, cut], verify=True)
    assert "NaN/Inf" in checked[0].error
    assert checked[1].ok and checked[1].frames == plain[1].frames < 16000  # what is there


def test_cache_options_and_broken_cache(folder, _index_cache, tmp_path, caplog, calls):
    paths = find_audio_files(folder)
    scan_files(paths, cache=False)
    assert not _index_cache.exists()
    assert default_cache_dir() == _index_cache
    scan_files(paths, cache_dir=tmp_path / "elsewhere")
    (cache_file,) = (tmp_path / "elsewhere").glob("*.json")
    cache_file.write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert all(e.ok for e in scan_files(paths, cache_dir=tmp_path / "elsewhere"))
    assert "ignoring unreadable audio index cache" in caplog.text
    blocker = tmp_path / "file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING):
        assert len(scan_files(paths, cache_dir=blocker / "sub")) == 5
    assert "could not write audio index cache" in caplog.text


def test_progress_bar(folder, capsys):
    scan_files(find_audio_files(folder), progress=True, cache=False)
    assert "Scanning audio" in capsys.readouterr().err
