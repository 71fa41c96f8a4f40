"""Checkpoints: one folder per step, written atomically, the newest N kept.

Layout of ``RUN_DIR/checkpoints``::

    step_00000100/
        generator/ckpt/...          DeepSpeed state of each engine role (model, optimizer, LR)
        discriminator/ckpt/...
        model.safetensors           consolidated fp32 weights of the exported module
        ema.safetensors             EMA weights (when EMA is on)
        trainer_state.json          step, data position, counters
        rng/rank_00000.pt           per-rank RNG states (torch/numpy/python; weights_only)
    latest                          name of the newest complete checkpoint

Every rank writes into ``step_XXXXXXXX.tmp``; once all ranks are done, rank 0 renames it
and then rewrites ``latest`` (write + rename). A save interrupted at any point leaves the
previous checkpoint and ``latest`` intact; stale ``.tmp`` folders are removed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from audio_core.engine import distributed
from audio_core.errors import AudioCoreError

TAG = "ckpt"
LATEST = "latest"
MODEL_FILE = "model.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "trainer_state.json"


class CheckpointError(AudioCoreError):
    """A checkpoint is missing or incomplete."""


def step_name(step: int) -> str:
    return f"step_{step:08d}"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    """Contiguous CPU copies, so shared or strided tensors serialise."""
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def rng_state() -> dict[str, Any]:
    """RNG states of torch, numpy and Python, in types ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state()
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
        """The checkpoint ``latest`` names, or ``None`` when there is no complete one.

        If the pointer is missing or names an incomplete or deleted folder (a crash between
        its writes, a hand-deleted folder), the newest complete checkpoint is used instead.
        """
        pointer = self.root / LATEST
        if pointer.is_file():
            name = pointer.read_text(encoding="utf-8").strip()
            path = self.root / name
            if name and (path / STATE_FILE).is_file():
                return path
        complete = self.all()
        return complete[-1] if complete else None

    def all(self) -> list[Path]:
        return sorted(p for p in self.root.glob("step_*") if p.is_dir()
                      and not p.name.endswith(".tmp") and (p / STATE_FILE).is_file())

    # -- saving ---------------------------------------------------------------------------
    def save(self, step: int, engines: Mapping[str, Any], state: Mapping[str, Any], *,
             model: Mapping[str, torch.Tensor] | None = None,
             ema: Mapping[str, torch.Tensor] | None = None) -> Path:
        """Write a checkpoint for ``step`` (collective: every rank must call it).

        ``model``/``ema``: consolidated fp32 tensors, written by rank 0.
        """
        final = self.root / step_name(step)
        tmp = final.with_name(final.name + ".tmp")
        if distributed.is_main_process():
            shutil.rmtree(tmp, ignore_errors=True)
            (tmp / "rng").mkdir(parents=True)
        distributed.barrier()
        for engine in engines.values():
            engine.save(tmp, TAG)
        torch.save(rng_state(), tmp / "rng" / f"rank_{distributed.rank():05d}.pt")
        if distributed.is_main_process():
            if model is not None:
                save_safetensors(model, tmp / MODEL_FILE)
            if ema is not None:
                save_safetensors(ema, tmp / EMA_FILE)
            payload = {"step": step, "world_size": distributed.world_size(),
                       "roles": list(engines), **state}
            (tmp / STATE_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")
        distributed.barrier()
        if distributed.is_main_process():
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            write_atomic(self.root / LATEST, final.name)
            self._prune()
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
        state_file = path / STATE_FILE
        if not state_file.is_file():
            raise CheckpointError(f"{path} is not a complete checkpoint (no {STATE_FILE})")
        state = json.loads(state_file.read_text(encoding="utf-8"))
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
            set_rng_state(torch.load(rng_file, weights_only=True))
        return state

    @staticmethod
    def load_tensors(path: str | Path, name: str = MODEL_FILE) -> dict[str, torch.Tensor]:
        file = Path(path) / name
        if not file.is_file():
            raise CheckpointError(f"{file} does not exist")
        return load_file(str(file))
