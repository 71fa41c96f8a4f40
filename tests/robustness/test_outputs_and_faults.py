"""Second hardening round: no command writes onto its inputs, into an export or over a user's
file without --overwrite; exports need a valid export.json; generation sizes are bounded;
disk faults and bad numbers are one-line errors (no traceback)."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_core.cli import main

RATE = 8000


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    from audio_core.config import load_config
    from audio_core.engine.export import save_export
    from audio_core.models.build import build_model
    from audio_core.plugins import get_registry

    conv = {"dim": 3, "width": 2, "ratios": [2, 4]}
    cfg = load_config({"run": {"name": "ae", "seed": 0},
                       "data": {"sample_rate": RATE, "channels": 1},
                       "model": {"encoder": {"name": "core.conv", "params": conv},
                                 "decoder": {"name": "core.conv", "params": conv},
                                 "losses": [{"name": "core.l1"}]}})
    torch.manual_seed(0)
    return save_export(build_model(cfg, get_registry()), cfg,
                       tmp_path_factory.mktemp("export") / "model")


@pytest.fixture()
def clip(tmp_path) -> Path:
    t = np.arange(RATE // 2) / RATE
    sf.write(tmp_path / "clip.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
             RATE)
    return tmp_path / "clip.wav"


def _copy(export: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(export, tmp_path / "exp"))


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]  # after any progress bar
    assert last.startswith("audio-core: error:"), err
    return last


def test_generate_never_writes_into_an_export(export, tmp_path, capsys):
    exp = _copy(export, tmp_path)
    info = (exp / "export.json").read_bytes()
    code = main(["generate", str(exp), "-o", str(exp / "export.wav"), "--overwrite"])
    assert code == 1 and "inside the export folder" in _error(capsys)
    assert (exp / "export.json").read_bytes() == info
    assert sorted(p.name for p in exp.iterdir()) == ["config.yaml", "export.json",
                                                     "model.safetensors"]


def test_reconstruct_refuses_a_users_file_and_overwrite_moves_it_aside(export, clip,
                                                                      tmp_path, capsys):
    out = tmp_path / "mine.wav"
    shutil.copy(clip, out)
    (tmp_path / "mine.json").write_text("notes")
    assert main(["reconstruct", str(export), str(clip), str(out), "--no-report"]) == 1
    assert "--overwrite" in _error(capsys)
    assert main(["reconstruct", str(export), str(clip), str(out)]) == 1
    _error(capsys)
    assert (tmp_path / "mine.json").read_text() == "notes"
    assert main(["reconstruct", str(export), str(clip), str(out), "--overwrite"]) == 0
    assert [p.read_text() for p in tmp_path.glob("mine.json.old-*")] == ["notes"]
    assert len(list(tmp_path.glob("mine.wav.old-*"))) == 1


def test_eval_out_never_replaces_a_users_files(export, clip, tmp_path, capsys):
    out = tmp_path / "ev"
    out.mkdir()
    (out / "files.csv").write_text("my,table\n")
    args = ["eval", str(export), str(clip), "--out", str(out), "--no-fad", "--no-dnsmos",
            "--speech", "no"]
    assert main(args) == 1
    assert "files.csv" in _error(capsys)
    assert (out / "files.csv").read_text() == "my,table\n"
    assert main([*args, "--overwrite"]) == 0
    assert main(args) == 0  # an earlier evaluation is replaced without --overwrite
    assert main(["eval", str(export), str(clip), "--out", str(export), "--no-fad"]) == 1
    assert "inside the export folder" in capsys.readouterr().err


def test_export_overwrite_moves_a_users_folder_aside(tmp_path):
    from audio_core.inference.paths import OutputPathError, check_export_target

    out = tmp_path / "out"
    out.mkdir()
    (out / "config.yaml").write_text("mine")
    with pytest.raises(OutputPathError, match="--overwrite"):
        check_export_target(tmp_path / "run", out)
    check_export_target(tmp_path / "run", out, overwrite=True)
    assert not out.exists()
    assert [(p / "config.yaml").read_text() for p in tmp_path.glob("out.old-*")] == ["mine"]


def test_export_to_another_format_never_writes_over_its_source_or_files(export, tmp_path,
                                                                        capsys):
    """--format onnx (and the other formats): OUT may not be the export itself, a folder
    inside it or a folder holding files; --overwrite moves such a folder aside."""
    from audio_core.cli import main
    from audio_core.inference.paths import check_format_target

    before = sorted(p.name for p in export.iterdir())
    for out in (export, export / "onnx"):
        assert main(["export", str(export), str(out), "--format", "onnx"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"OUT '{out}'" in err
    assert sorted(p.name for p in export.iterdir()) == before
    users = tmp_path / "mine"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    assert main(["export", str(export), str(users), "--format", "onnx"]) == 1
    assert "already holds notes.txt" in capsys.readouterr().err
    check_format_target(export, users, overwrite=True)  # what --overwrite runs first
    assert not users.exists()
    assert [(p / "notes.txt").read_text() for p in tmp_path.glob("mine.old-*")] == ["mine"]


@pytest.mark.parametrize("damage", ["missing", "garbled", "list"])
def test_an_export_without_a_valid_export_json_is_refused(export, tmp_path, clip, capsys,
                                                          damage):
    exp = _copy(export, tmp_path)
    info = exp / "export.json"
    if damage == "missing":
        info.unlink()
    else:
        info.write_text("{\"config_fingerp" if damage == "garbled" else "[1, 2]")
    code = main(["reconstruct", str(exp), str(clip), str(tmp_path / "o.wav")])
    err = _error(capsys)
    assert code == 1 and str(info) in err
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("flag, value, expected", [
    ("--num-samples", "100000000", "--num-samples 100000000 is above the limit of 1024"),
    ("--steps", "1000000000", "--steps 1000000000 is above the limit of 10000"),
    ("--seconds", "1e9", "--seconds 1000000000.0 is above the limit of 3600"),
])
def test_generate_sizes_are_bounded(export, tmp_path, capsys, flag, value, expected):
    assert main(["generate", str(export), flag, value, "-o", str(tmp_path / "g.wav")]) == 1
    assert expected in _error(capsys)


def test_the_memory_budget_holds_without_limits():
    from audio_core.inference.limits import GenerationLimitError, check_generation

    check_generation(num_samples=4, seconds=2.0, steps=50, sample_rate=44100, channels=2)
    with pytest.raises(GenerationLimitError, match="GiB, over this machine's budget"):
        check_generation(num_samples=1000, seconds=1e9, sample_rate=44100, unlimited=True)
    with pytest.raises(GenerationLimitError, match="guidance"):
        check_generation(guidance=float("nan"))
    check_generation(num_samples=5000, unlimited=True)


@pytest.mark.parametrize("fault", ["file_as_folder", "not_writable", "full_disk"])
def test_disk_faults_are_one_line_errors(export, clip, tmp_path, capsys, monkeypatch, fault):
    target = tmp_path / "out" / "x.wav"
    if fault == "file_as_folder":
        (tmp_path / "out").write_text("a file")
        expected = "is a file, not a folder"
    elif fault == "not_writable":
        (tmp_path / "out").mkdir(mode=0o500)
        expected = "permission denied"
        if __import__("os").access(tmp_path / "out", __import__("os").W_OK):
            pytest.skip("running as root: permissions are not enforced")
    else:
        import soundfile

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(soundfile, "write", full)
        expected = "no space left on the device"
    code = main(["reconstruct", str(export), str(clip), str(target), "--no-report"])
    err = _error(capsys)
    assert code == 1 and expected in err and str(target.parent) in err


def test_a_full_disk_in_stats_and_export_names_the_path(export, clip, tmp_path, capsys,
                                                        monkeypatch):
    import safetensors.torch

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    out = tmp_path / "s.st"
    assert main(["stats", str(export), str(clip.parent), str(out)]) == 1
    err = _error(capsys)
    assert f"cannot write {out}: no space left on the device" in err
    assert not list(tmp_path.glob(".s.st*"))  # no temporary file left behind
    from audio_core.engine.export import save_export
    from audio_core.files import WriteError

    with pytest.raises(WriteError, match="no space left"):
        save_export(torch.nn.Linear(1, 1), json.loads("{}"), tmp_path / "e")


def test_exports_and_checkpoint_weights_follow_the_umask(export, tmp_path):
    import os

    from audio_core.config import load_config
    from audio_core.engine.export import save_export
    from audio_core.models.build import build_model
    from audio_core.plugins import get_registry
    from audio_core.storage.checkpoint import save_safetensors

    cfg = load_config(str(export / "config.yaml"))
    old = os.umask(0o022)
    try:
        save_export(build_model(cfg, get_registry()), cfg, tmp_path / "exp")
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "model.safetensors")  # checkpoints
    finally:
        os.umask(old)
    files = [*(tmp_path / "exp").iterdir(), tmp_path / "model.safetensors"]
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o644"}
    os.umask(0o077)
    try:
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "private.safetensors")
    finally:
        os.umask(old)
    assert oct((tmp_path / "private.safetensors").stat().st_mode & 0o777) == "0o600"


def test_a_checkpoint_on_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch):
    import safetensors.torch

    from audio_core.storage.checkpoint import CheckpointError, CheckpointManager

    class Engine:
        def save(self, folder, tag):
            (Path(folder) / "g" / tag).mkdir(parents=True)
            (Path(folder) / "g" / tag / "state.pt").write_bytes(b"x")

    manager = CheckpointManager(tmp_path / "checkpoints")
    weights = {"w": torch.zeros(2)}
    first = manager.save(1, {"g": Engine()}, {}, model=weights)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(CheckpointError, match=f"no space left on the device.*previous "
                                              f"checkpoint {first} is intact"):
        manager.save(2, {"g": Engine()}, {}, model=weights)
    assert manager.latest() == first
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest",
                                                                             first.name]


@pytest.mark.parametrize("command", ["reconstruct", "encode", "decode", "stats", "latents",
                                     "generate", "eval", "export"])
def test_an_output_under_a_file_is_one_line_in_every_command(export, clip, tmp_path, capsys,
                                                             command):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out = blocker / "sub" / "out"
    argv = {"reconstruct": ["reconstruct", export, clip, out],
            "encode": ["encode", export, clip, out],
            "decode": ["decode", export, clip, out],
            "stats": ["stats", export, clip.parent, out],
            "latents": ["latents", export, clip.parent, out],
            "generate": ["generate", export, "-o", out],
            "eval": ["eval", export, clip, "--out", out]}.get(command)
    if argv is None:  # export: the check export_run makes before reading the checkpoint
        from audio_core.inference.paths import OutputPathError, check_export_target

        with pytest.raises(OutputPathError) as info:
            check_export_target(tmp_path / "run", out)
        err = str(info.value)
    else:
        assert main([str(a) for a in argv]) == 1
        err = _error(capsys)
    assert str(blocker) in err and ("is a file" in err or "not a folder" in err), err
