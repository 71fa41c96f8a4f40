"""Checkpoints: one folder per step, written atomically, the newest N kept.

Layout of ``RUN_DIR/checkpoints``::

    step_00000100/
        generator/ckpt/...          DeepSpeed state of each engine role (model, optimizer, LR)
        discriminator/ckpt/...
        model.safetensors           consolidated fp32 weights of the model (the first role)
        ema.safetensors             EMA weights (when EMA is on)
        discriminator.safetensors   consolidated fp32 weights of each other role (GAN tasks)
        trainer_state.json          step, data position, counters
        rng/rank_00000.pt           per-rank RNG states (torch/numpy/python; weights_only)
        manifest.json               every other file of the folder with its size
    latest                          name of the newest complete checkpoint
    best/                           the best validation step (``train.best_metric``):
        model.safetensors, ema.safetensors, trainer_state.json (step, config, best)

Every rank writes into ``step_XXXXXXXX.tmp``; once all ranks are done, rank 0 lists the
files in ``manifest.json``, renames the folder and then rewrites ``latest`` (write +
rename). A save interrupted at any point leaves the previous checkpoint and ``latest``
intact; stale ``.tmp`` folders are removed.

The best checkpoint holds weights only (no optimizer state): ``audio-core export RUN OUT
--checkpoint RUN/checkpoints/best`` exports it. It is replaced by a rename, so a crash
leaves the previous best (or the new one) whole.

Reading: :meth:`CheckpointManager.latest` returns the newest checkpoint that is complete
(:func:`incomplete_reason`: trainer state readable, every manifest file present with its
size) and logs a warning naming each newer one it skipped and why. Engine state files are
unpickled without running code (:mod:`audio_core.storage.safe_load`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audio_core import distributed
from audio_core.errors import AudioCoreError
from audio_core.files import cause, check_readable, write_text
from audio_core.files import save_safetensors as save_tensors
from audio_core.storage.safe_load import WeightsFileError, load_engine_state, load_safetensors

log = logging.getLogger("audio_core")

TAG = "ckpt"
LATEST = "latest"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "trainer_state.json"
MANIFEST_FILE = "manifest.json"
BEST = "best"
#: Files a checkpoint may lack and still be resumed (with a warning): per-rank RNG states.
OPTIONAL_PREFIXES = ("rng/",)
_STEP_NAME = re.compile(r"step_\d{8,}")


class CheckpointError(AudioCoreError):
    """A checkpoint is missing or incomplete."""


def step_name(step: int) -> str:
    return f"step_{step:08d}"


def read_state(path: str | Path) -> dict[str, Any]:
    """The trainer state of checkpoint ``path``; :class:`CheckpointError` if it is missing,
    truncated or lacks ``step``/``world_size``/``roles``."""
    file = Path(path) / STATE_FILE
    check_readable(file, "trainer state")  # unreadable is not "truncated or corrupt"
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path} is not a complete checkpoint (no {STATE_FILE})") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file} is truncated or corrupt ({exc})") from exc
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) \
            or not isinstance(state.get("world_size"), int) \
            or not isinstance(state.get("roles"), list):
        raise CheckpointError(f"{file} lacks step, world_size or roles: not a trainer state")
    return state


def write_manifest(path: Path) -> None:
    """List every file under checkpoint folder ``path`` with its size in ``manifest.json``."""
    files = {p.relative_to(path).as_posix(): p.stat().st_size
             for p in sorted(path.rglob("*")) if p.is_file() and p.name != MANIFEST_FILE}
    (path / MANIFEST_FILE).write_text(json.dumps({"files": files}, indent=1), encoding="utf-8")


def incomplete_reason(path: str | Path) -> str | None:
    """Why checkpoint folder ``path`` cannot be resumed (``None``: it is complete).

    Checks that the trainer state parses and, with a manifest, that every file it lists
    (except per-rank RNG states, see :data:`OPTIONAL_PREFIXES`) exists with its size;
    without one (older checkpoints), that each engine role folder holds readable state
    files. Costs a few ``stat`` calls; no tensor is read.
    """
    path = Path(path)
    try:
        state = read_state(path)
    except CheckpointError as exc:
        return str(exc)
    manifest = path / MANIFEST_FILE
    if manifest.is_file():
        try:
            files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
            files = {str(k): int(v) for k, v in files.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"{manifest} is truncated or corrupt ({exc})"
        for name, size in files.items():
            if name.startswith(OPTIONAL_PREFIXES):
                continue
            file = path / name
            if not file.is_file():
                return f"{file} is missing"
            if file.stat().st_size != size:
                return f"{file} is truncated ({file.stat().st_size} of {size} bytes)"
        return None
    for role in state["roles"]:
        folder = path / str(role) / TAG
        states = sorted(folder.glob("*.pt")) if folder.is_dir() else []
        if not states:
            return f"{folder} holds no engine state"
        for file in states:
            if not zipfile.is_zipfile(file):
                return f"{file} is truncated or corrupt"
    return None


def write_atomic(path: Path, text: str) -> None:
    write_text(path, text)


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    """Contiguous CPU copies (shared or strided tensors serialise), written atomically
    with umask permissions (:func:`audio_core.files.save_safetensors`)."""
    save_tensors(tensors, path)


def rng_state() -> dict[str, Any]:
    """RNG states of torch, numpy and Python, in types ``torch.load(weights_only=True)`` reads."""
    np_state: Any = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:])}


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))


class CheckpointManager:
    """Saves and restores engines plus trainer state under ``root``."""

    def __init__(self, root: str | Path, keep: int = 3) -> None:
        self.root, self.keep = Path(root), max(1, keep)

    # -- queries ----------------------------------------------------------------------
    def latest(self) -> Path | None:
        """The newest complete checkpoint, or ``None`` when there is none.

        The one ``latest`` names comes first; if the pointer is missing, garbled or names an
        incomplete or deleted folder (a crash between writes, a hand-deleted file), the
        newest complete one is used instead. Each checkpoint passed over is logged as a
        warning with the reason (:func:`incomplete_reason`).
        """
        candidates = self.all()[::-1]
        pointer = self.root / LATEST
        if pointer.is_file():
            try:
                name = pointer.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                name = ""
            if _STEP_NAME.fullmatch(name) and (self.root / name) in candidates:
                candidates.remove(self.root / name)
                candidates.insert(0, self.root / name)
        skipped = []
        for path in candidates:
            reason = incomplete_reason(path)
            if reason is None:
                for bad, why in skipped:
                    log.warning("checkpoint %s is incomplete (%s); using %s instead",
                                bad, why, path.name)
                return path
            skipped.append((path.name, reason))
        for bad, why in skipped:
            log.warning("checkpoint %s is incomplete (%s)", bad, why)
        return None

    def all(self) -> list[Path]:
        return sorted(p for p in self.root.glob("step_*") if p.is_dir()
                      and not p.name.endswith(".tmp") and (p / STATE_FILE).is_file())

    # -- saving ---------------------------------------------------------------------------
    def save(self, step: int, engines: Mapping[str, Any], state: Mapping[str, Any], *,
             model: Mapping[str, torch.Tensor] | None = None,
             ema: Mapping[str, torch.Tensor] | None = None,
             parts: Mapping[str, Mapping[str, torch.Tensor]] | None = None) -> Path:
        """Write a checkpoint for ``step`` (collective: every rank must call it).

        ``model``/``ema``: consolidated fp32 tensors, written by rank 0; ``parts``: more of
        them by file name (``discriminator.safetensors``: the other engine roles' weights).
        """
        final = self.root / step_name(step)
        tmp = final.with_name(final.name + ".tmp")
        if distributed.is_main_process():
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "rng").mkdir(parents=True)
        distributed.barrier()
        try:
            for engine in engines.values():
                engine.save(tmp, TAG)
            torch.save(rng_state(), tmp / "rng" / f"rank_{distributed.rank():05d}.pt")
            if distributed.is_main_process():
                if model is not None:
                    save_safetensors(model, tmp / MODEL_FILE)
                if ema is not None:
                    save_safetensors(ema, tmp / EMA_FILE)
                for name, tensors in (parts or {}).items():
                    save_safetensors(tensors, tmp / name)
                payload = {"step": step, "world_size": distributed.world_size(),
                           "roles": list(engines), **state}
                write_text(tmp / STATE_FILE, json.dumps(payload, indent=2))
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            previous = self.latest()
            kept = f"the previous checkpoint {previous} is intact" if previous else \
                "no earlier checkpoint exists"
            raise CheckpointError(f"could not write checkpoint {final}: {cause(exc)} "
                                  f"({getattr(exc, 'filename', None) or tmp}); {kept}") from exc
        distributed.barrier()
        if distributed.is_main_process():
            write_manifest(tmp)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            write_atomic(self.root / LATEST, final.name)
            self._prune()
        distributed.barrier()
        return final

    def save_best(self, step: int, roles: list[str], state: Mapping[str, Any], *,
                  model: Mapping[str, torch.Tensor] | None,
                  ema: Mapping[str, torch.Tensor] | None = None) -> Path:
        """Replace ``root/best`` with the weights of ``step`` (rank 0 writes; every rank
        calls it and waits). ``state`` (config, best metric) goes into its trainer state."""
        final = self.root / BEST
        if distributed.is_main_process():
            tmp, old = final.with_name(BEST + ".tmp"), final.with_name(BEST + ".old")
            for stale in (tmp, old):
                shutil.rmtree(stale, ignore_errors=True)
            tmp.mkdir(parents=True)
            if model is not None:
                save_safetensors(model, tmp / MODEL_FILE)
            if ema is not None:
                save_safetensors(ema, tmp / EMA_FILE)
            payload = {"step": step, "world_size": distributed.world_size(), "roles": roles,
                       **state}
            write_text(tmp / STATE_FILE, json.dumps(payload, indent=2))
            if final.exists():
                os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        distributed.barrier()
        return final

    def _prune(self) -> None:
        for stale in self.root.glob("step_*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        for old in self.all()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    # -- loading ----------------------------------------------------------------------------
    def load(self, path: str | Path, engines: Mapping[str, Any]) -> dict[str, Any]:
        """Restore engines and this rank's RNG from ``path``; returns the trainer state."""
        path = Path(path)
        state = read_state(path)
        missing = sorted(set(engines) - set(state["roles"]))
        if missing:
            raise CheckpointError(f"checkpoint {path} has no state for engine role(s) {missing}")
        if state["world_size"] != distributed.world_size():
            raise CheckpointError(
                f"checkpoint {path} was written by {state['world_size']} rank(s); this run has "
                f"{distributed.world_size()}. Resume with the same number of processes, or "
                f"export it and start a new run from the exported weights")
        for engine in engines.values():
            engine.load(path, TAG)
        rng_file = path / "rng" / f"rank_{distributed.rank():05d}.pt"
        if rng_file.is_file():
            set_rng_state(load_engine_state(rng_file))
        else:
            log.warning("%s is missing: rank %d resumes with freshly seeded random number "
                        "generators, so this run will NOT continue exactly as an uninterrupted "
                        "one would (other noise and crops from here on)", rng_file,
                        distributed.rank())
        return state

    @staticmethod
    def load_tensors(path: str | Path, name: str = MODEL_FILE) -> dict[str, torch.Tensor]:
        file = Path(path) / name
        if not file.is_file():
            raise CheckpointError(f"{file} does not exist")
        try:
            return load_safetensors(file)
        except WeightsFileError as exc:
            raise CheckpointError(str(exc)) from exc
