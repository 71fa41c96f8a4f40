"""Load a model from an export folder or a run folder: ``audio_core.load(PATH)``.

An export (``model.safetensors`` + ``config.yaml`` + ``export.json``, see
:mod:`audio_core.engine.export`) or a run's newest checkpoint is rebuilt with the model's own
class from its config (never a task, loss or discriminator), its weights checked against the
config they were trained with, the copies a self-contained export bundles resolved against
the export folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from audio_core.storage.bundle import BUNDLED, relocate, restore
from audio_core.storage.checkpoint import EMA_FILE, MODEL_FILE, CheckpointError, CheckpointManager
from audio_core.storage.safe_load import load_safetensors
from audio_core.storage.weights_check import (
    CONFIG_FILE,
    INFO_FILE,
    check_config_record,
    load_checked,
    read_export_info,
)


def checkpoint_of(run_dir: Path, checkpoint: str | Path | None) -> Path:
    """``checkpoint``, or ``run_dir``'s newest complete checkpoint."""
    if checkpoint is not None:
        return Path(checkpoint)
    latest = CheckpointManager(run_dir / "checkpoints").latest()
    if latest is None:
        raise CheckpointError(f"{run_dir} has no complete checkpoint under "
                              f"{run_dir / 'checkpoints'}; is it a run folder?")
    return latest


def trained_config(ckpt: Path, run_dir: Path) -> str:
    """The resolved config (YAML) ``ckpt`` was trained with: the copy stored in its trainer
    state, else (older checkpoints) the run's ``config.yaml``."""
    state_file = ckpt / "trainer_state.json"
    if state_file.is_file():
        stored = json.loads(state_file.read_text(encoding="utf-8")).get("config")
        if stored:
            return stored
    config = run_dir / CONFIG_FILE
    if not config.is_file():
        raise CheckpointError(f"neither {state_file} nor {config} holds the run config: "
                              f"cannot rebuild the model without it")
    return config.read_text(encoding="utf-8")


def weights_file(ckpt: Path, ema: bool | None) -> str:
    """``ema.safetensors`` when ``ema`` (or ``None`` and the checkpoint has EMA weights)."""
    if ema is None:
        return EMA_FILE if (ckpt / EMA_FILE).is_file() else MODEL_FILE
    if ema and not (ckpt / EMA_FILE).is_file():
        raise CheckpointError(f"{ckpt} has no EMA weights (train.ema_decay was 0)")
    return EMA_FILE if ema else MODEL_FILE


def yaml_mapping(text: str) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return cast(dict[str, Any], OmegaConf.to_container(OmegaConf.create(text)))


def load(path: str | Path, *, device: str = "cpu", ema: bool | None = None,
         registry: Any = None, untrained: bool = False) -> nn.Module:
    """The model of an export folder or a run folder, ready in eval mode, in one call.

    Run folders give their newest checkpoint's EMA weights when it has them (``ema=None``),
    or as ``ema`` says. ``untrained=True`` builds the same model freshly initialised (seeded
    by ``run.seed``) instead of loading weights: the baseline a trained model is compared
    to. Building never constructs a task, loss or discriminator.
    """
    from audio_core.config import load_config
    from audio_core.models.build import build_model

    path = Path(path)
    record: dict[str, Any] = {}
    if (path / MODEL_FILE).is_file():
        weights, config = path / MODEL_FILE, path / CONFIG_FILE
        if not config.is_file():
            raise CheckpointError(f"{config} is missing: cannot rebuild the model without "
                                  f"its config")
        source, record = config, read_export_info(path / INFO_FILE, required=True)
    else:
        ckpt = checkpoint_of(path, None)
        weights = ckpt / weights_file(ckpt, ema)
        source = yaml_mapping(trained_config(ckpt, path))
    if registry is None:
        from audio_core.plugins import get_registry

        registry = get_registry()
    bundled = record.get(BUNDLED)
    if bundled and isinstance(source, Path):  # copies inside the export: built from there;
        data = yaml_mapping(source.read_text(encoding="utf-8"))  # checked as trained
        cfg = load_config(restore(data, path, bundled), registry=registry)
        build_cfg = load_config(relocate(data, path, bundled), registry=registry)
    else:
        cfg = build_cfg = load_config(source, registry=registry)
    check_config_record(record, cfg, str(source))
    with torch.random.fork_rng():
        torch.manual_seed(cfg.run.seed)
        model = build_model(build_cfg, registry, loading=not untrained)
    if not untrained:
        load_checked(model, load_safetensors(weights), str(weights), cfg)
    model.config = cfg
    return model.to(device).eval()
