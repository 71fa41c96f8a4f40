"""``python -m audio_core.engine.ops_wheel``: where the prebuilt DeepSpeed wheel lives, what
its key depends on, and that nothing is built or installed when the ops are already in."""

from __future__ import annotations

import sys
from importlib import metadata

from audio_core.engine import ops_wheel


def test_the_wheelhouse_is_per_machine_and_can_be_moved(monkeypatch, tmp_path):
    monkeypatch.delenv(ops_wheel.WHEELHOUSE_ENV, raising=False)
    assert ops_wheel.wheelhouse().parts[-3:] == (".cache", "audio-core", "deepspeed-ops")
    monkeypatch.setenv(ops_wheel.WHEELHOUSE_ENV, str(tmp_path))
    assert ops_wheel.wheelhouse() == tmp_path


def test_the_key_names_what_the_compiled_ops_depend_on():
    key = ops_wheel.build_key()
    assert f"deepspeed-{metadata.version('deepspeed')}" in key
    assert f"torch-{metadata.version('torch')}" in key
    assert f"_cp{sys.version_info.major}{sys.version_info.minor}_" in key


def test_nothing_is_built_when_deepspeed_already_carries_the_ops(monkeypatch, tmp_path):
    monkeypatch.setenv(ops_wheel.WHEELHOUSE_ENV, str(tmp_path))
    monkeypatch.setattr(ops_wheel, "installed_ops", lambda: dict.fromkeys(ops_wheel.OPS, True))
    monkeypatch.setattr(ops_wheel, "_pip", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("pip must not run")))
    assert "already carries" in ops_wheel.ensure_prebuilt_ops()
    assert not any(tmp_path.iterdir())
