"""The CPU allocator tuning every ``audio-core`` command applies at start-up."""

from __future__ import annotations

import sys

import pytest

from audio_core.engine import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt only")
def test_glibc_gets_the_mmap_and_trim_thresholds(monkeypatch):
    monkeypatch.delenv(allocator.ENV, raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert allocator.tune_cpu_allocator() is True


@pytest.mark.parametrize("env", [{allocator.ENV: "0"}, {"MALLOC_TRIM_THRESHOLD_": "1000"},
                                 {"MALLOC_MMAP_THRESHOLD_": "0"}])
def test_the_user_can_opt_out_or_tune_it_themselves(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert allocator.tune_cpu_allocator() is False


def test_it_starts_no_process(monkeypatch):
    """A child process at start-up would be mistaken for the command by ``audio-core launch``'s
    callers (and costs time): ``ctypes.util.find_library`` runs ldconfig, so it is not used."""
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError(f"started a process: {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.delenv(allocator.ENV, raising=False)
    allocator.tune_cpu_allocator()


def test_the_cli_applies_it_before_running_a_command(monkeypatch):
    from audio_core import cli

    calls = []
    monkeypatch.setattr(cli, "tune_cpu_allocator", lambda: calls.append(1))
    assert cli.main(["plugins"]) == 0
    assert calls == [1]
