"""A file this user may not read is reported as unreadable (permission denied, with its
path), not as missing, damaged or "not a complete safetensors file".

The tests run as root, where permissions are not enforced; the CLI runs in a subprocess
without that privilege: as the user nobody (65534) where the interpreter is reachable by
others, else (an interpreter under a 0700 home, as on the project's machines) as root
without the capabilities that bypass file permissions (``CAP_DAC_OVERRIDE``,
``CAP_DAC_READ_SEARCH``, dropped from the bounding set before exec). Either way the file
belongs to another user and is mode 0600."""

from __future__ import annotations

import ctypes
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

NOBODY = 65534
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="needs root to run the CLI without its privileges")


def _reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can reach and run ``path``."""
    path = path.resolve()
    parents_ok = all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)
    return parents_ok and bool(path.stat().st_mode & (stat.S_IROTH | stat.S_IXOTH))


AS_NOBODY = _reachable_by_others(Path(sys.executable)) and all(
    _reachable_by_others(Path(p)) for p in sys.path if p and Path(p).is_dir())


def _unprivileged() -> None:
    """``preexec_fn``: become nobody, or lose the permission-bypassing capabilities."""
    if AS_NOBODY:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _hide(path: Path) -> Path:
    """``path`` mode 0600, owned by a user the subprocess is not: root when it runs as
    nobody, nobody when it runs as root without the capabilities."""
    os.chown(path, 0 if AS_NOBODY else NOBODY, 0 if AS_NOBODY else NOBODY)
    os.chmod(path, 0o600)
    return path


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(cwd), "OMP_NUM_THREADS": "1",
           "MPLCONFIGDIR": str(cwd / "mpl"), "NUMBA_CACHE_DIR": str(cwd / "numba")}
    return subprocess.run([sys.executable, "-m", "audio_core", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=_unprivileged)


@pytest.fixture()
def place():
    """A folder anyone may enter and write (the subprocess writes its outputs there): in
    the system's temporary folder, as pytest's own are private to their user."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="audio-core-unreadable-"))
    os.chmod(folder, 0o777)
    if AS_NOBODY and not all(p.stat().st_mode & stat.S_IXOTH for p in folder.parents):
        pytest.fail(f"{folder.parent} is not reachable by other users")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def files(place) -> dict[str, Path]:
    from audio_core.audio.io import save_audio
    from audio_core.config import load_config
    from audio_core.engine.export import save_export
    from audio_core.models.build import build_model
    from audio_core.plugins import get_registry

    conv = {"dim": 3, "width": 2, "ratios": [2, 4]}
    cfg = load_config({"run": {"name": "ae", "seed": 0},
                       "data": {"sample_rate": 8000, "channels": 1},
                       "model": {"encoder": {"name": "core.conv", "params": conv},
                                 "decoder": {"name": "core.conv", "params": conv},
                                 "losses": [{"name": "core.l1"}]}})
    torch.manual_seed(0)
    export = save_export(build_model(cfg, get_registry()), cfg, place / "export")
    save_audio(place / "in.wav", 0.1 * torch.randn(1, 800), 8000)
    (place / "c.yaml").write_text("extends: tiny_autoencoder\n")
    for p in (export, *export.iterdir()):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(place / "in.wav", 0o644)
    return {"export": export, "audio": place / "in.wav", "config": place / "c.yaml"}


def _copy_export(export: Path, name: str) -> Path:
    copy = export.with_name(name)
    shutil.copytree(export, copy)
    os.chmod(copy, 0o755)
    return copy


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("what", ["weights", "export.json", "export config", "audio",
                                  "config"])
def test_an_unreadable_file_is_reported_as_unreadable(files, place, what):
    export, audio = files["export"], files["audio"]
    if what == "weights":
        export = _copy_export(export, "weights")
        hidden = _hide(export / "model.safetensors")
    elif what == "export.json":
        export = _copy_export(export, "info")
        hidden = _hide(export / "export.json")
    elif what == "export config":
        export = _copy_export(export, "cfg")
        hidden = _hide(export / "config.yaml")
    elif what == "audio":
        audio = place / "hidden.wav"
        shutil.copy(files["audio"], audio)
        hidden = _hide(audio)
    else:
        hidden = _hide(files["config"])
    args = (["config", "show", hidden] if what == "config"
            else ["reconstruct", export, audio, place / f"out_{what.replace(' ', '_')}.wav"])
    result = _cli(args, place)
    err = result.stderr.strip()
    assert result.returncode == 1, (result.returncode, err)
    assert err.count("\n") == 0 and err.startswith("audio-core: error:"), err
    assert "permission denied" in err and hidden.name in err, err
    for wrong in ("No such file", "does not exist", "not a complete safetensors",
                  "damaged", "missing", "Traceback"):
        assert wrong not in err, err


def test_the_subprocess_really_lacks_the_privilege(place):
    """The check above means something: the same subprocess cannot read a 0600 file of
    another user, while this (root) process can."""
    secret = place / "secret.txt"
    secret.write_text("x")
    _hide(secret)
    assert secret.read_text() == "x"
    probe = subprocess.run([sys.executable, "-c", f"open({str(secret)!r}).read()"],
                           capture_output=True, text=True, preexec_fn=_unprivileged,
                           timeout=60)
    assert probe.returncode == 1 and "PermissionError" in probe.stderr, probe.stderr


@pytest.mark.parametrize("reader, name, call", [
    ("latent statistics file", "stats.safetensors",
     "from audio_core.models.latent_stats import load_stats; load_stats(P)"),
    ("latents index", "index.json",
     "from audio_core.latents.tar_shards import is_tar_latents; is_tar_latents(P.parent)"),
    ("trainer state", "trainer_state.json",
     "from audio_core.storage.checkpoint import read_state; read_state(P.parent)"),
])
def test_unreadable_run_and_latents_files_are_named(place, reader, name, call):
    """Stats files, latents indexes and checkpoints' trainer states: unreadable, not
    "not a statistics file", "not latents" or "truncated or corrupt"."""
    hidden = place / name
    hidden.write_text("{}")
    _hide(hidden)
    code = (f"from pathlib import Path; P = Path({str(hidden)!r})\n"
            "from audio_core.files import ReadError\n"
            "try:\n    " + call.replace("; ", "\n    ") + "\n"
            "except ReadError as e:\n    print(e)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=place, preexec_fn=_unprivileged, timeout=120,
                            env={**os.environ, "HOME": str(place)})
    assert result.stdout.strip() == (f"{reader} {hidden}: permission denied (this user "
                                     f"cannot read it; check its permissions)"), result
