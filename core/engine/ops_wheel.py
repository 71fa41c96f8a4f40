"""Build DeepSpeed's CPU ops once per machine: ``python -m audio_core.engine.ops_wheel``.

DeepSpeed JIT-compiles its CPU ops (the shared-memory comm op every process group starts,
``cpu_adam`` for optimizer offload) into ``$TORCH_EXTENSIONS_DIR``. A JIT build records the
absolute paths of the DeepSpeed sources it compiled, so every virtual environment (each tox
env, each clone) compiles them again: minutes each on a small machine. This module builds
instead a DeepSpeed wheel with those ops compiled in (DeepSpeed's own ahead-of-time build,
``DS_BUILD_SHM_COMM=1 DS_BUILD_CPU_ADAM=1``) once, keeps it in a wheelhouse keyed by
DeepSpeed, torch, Python and the CPU's instruction set (the ops are compiled with
``-march=native``), and installs it into the current environment. DeepSpeed then imports the
compiled ops instead of compiling them.

The wheelhouse is ``$AUDIO_CORE_OPS_WHEELHOUSE`` (default
``~/.cache/audio-core/deepspeed-ops``); a file lock lets parallel environments wait for one
build. Building needs the DeepSpeed sdist (from the package index), torch, g++ and ninja.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

#: DeepSpeed's ahead-of-time build switches of the ops audio-core needs on CPU, by op name.
OPS = {"deepspeed_shm_comm": "DS_BUILD_SHM_COMM", "cpu_adam": "DS_BUILD_CPU_ADAM"}
WHEELHOUSE_ENV = "AUDIO_CORE_OPS_WHEELHOUSE"


def wheelhouse() -> Path:
    """``$AUDIO_CORE_OPS_WHEELHOUSE`` or ``~/.cache/audio-core/deepspeed-ops``."""
    folder = os.environ.get(WHEELHOUSE_ENV)
    return Path(folder) if folder else Path.home() / ".cache" / "audio-core" / "deepspeed-ops"


def build_key() -> str:
    """``deepspeed-<v>_torch-<v>_cp311_<machine>-<cpu hash>``: what the compiled ops depend
    on (the CPU's flags, since DeepSpeed compiles with ``-march=native``)."""
    cpu = ""
    with_flags = Path("/proc/cpuinfo")
    if with_flags.is_file():
        cpu = next((line for line in with_flags.read_text().splitlines()
                    if line.startswith(("flags", "Features"))), "")
    digest = hashlib.sha256(cpu.encode()).hexdigest()[:12]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    return (f"deepspeed-{metadata.version('deepspeed')}_torch-{metadata.version('torch')}"
            f"_{tag}_{platform.machine()}-{digest}")


def installed_ops() -> dict[str, bool]:
    """Which of :data:`OPS` the installed DeepSpeed carries compiled."""
    from deepspeed.git_version_info import installed_ops as ops

    return {name: bool(ops.get(name)) for name in OPS}


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def build_wheel(folder: Path) -> Path:
    """Compile DeepSpeed (the installed version, from its sdist) with :data:`OPS` into a
    wheel in ``folder``; returns its path."""
    for module, package in (("setuptools", "setuptools"), ("wheel", "wheel")):
        try:
            __import__(module)
        except ImportError:  # the sdist is built without isolation (it needs torch)
            _pip("install", "--quiet", package)
    env = {**os.environ, "DS_ACCELERATOR": "cpu", "DS_BUILD_OPS": "0",
           **{switch: "1" for switch in OPS.values()}}
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        _pip("wheel", "--no-deps", "--no-build-isolation", "--no-cache-dir",
             "--no-binary", "deepspeed", "--wheel-dir", tmp,
             f"deepspeed=={metadata.version('deepspeed')}", env=env)
        built = next(Path(tmp).glob("deepspeed-*.whl"))
        target = folder / built.name
        os.replace(built, target)
    return target


def ensure_prebuilt_ops(build: bool = True) -> str:
    """Install a DeepSpeed with :data:`OPS` compiled in, building its wheel if this machine
    has none yet (``build=False``: only when it has one); returns what was done."""
    if all(installed_ops().values()):
        return "the installed DeepSpeed already carries its CPU ops"
    from filelock import FileLock

    folder = wheelhouse() / build_key()
    if not build and not next(folder.glob("deepspeed-*.whl"), None):
        return f"none built on this machine yet ({folder}): the ops are JIT-built when used"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with FileLock(str(folder / "build.lock")):
        wheel = next(folder.glob("deepspeed-*.whl"), None)
        done = f"installed {wheel}" if wheel else ""
        if wheel is None:
            wheel = build_wheel(folder)
            done = f"built {wheel} in {time.perf_counter() - started:.0f} s and installed it"
    _pip("install", "--quiet", "--no-deps", "--force-reinstall", "--no-index", str(wheel))
    return done


def main(argv: list[str] | None = None) -> int:
    """``--cached-only``: install the machine's prebuilt wheel if there is one, never build
    (the README main job: one JIT-built comm op is faster than building every op)."""
    args = sys.argv[1:] if argv is None else argv
    done = ensure_prebuilt_ops(build="--cached-only" not in args)
    print(f"audio-core: DeepSpeed CPU ops: {done}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
