"""Export a run's model to consolidated safetensors + its resolved config, and load it back.

``export_run(RUN_DIR, OUT)`` writes::

    OUT/model.safetensors   fp32 weights of the model (its EMA weights when EMA was on)
    OUT/config.yaml         the resolved run config
    OUT/export.json         step, source checkpoint, weights kind, model type, audio-core
                            version, and the fingerprint of the config's model section (see
                            :mod:`audio_core.engine.weights_check`)

The export is the whole inference model (:mod:`audio_core.models`): ``load(PATH)`` builds
it with its own class from the config (never a training task, loss or discriminator),
loads the weights and returns it in eval mode with ``.config`` set to the run config.
Frozen parts (a pretrained or seeded encoder, a stage-1 model) are rebuilt from their
reference in the config. The stage-1 model and local frozen weights the config names are
copied into the export (``OUT/stage1/``, ``OUT/frozen/<slot>/``) and named relative to it
(:mod:`audio_core.engine.bundle`), so an export folder can be moved or shared. ``PATH`` is
an export folder or a run folder (its newest checkpoint). Both use the config stored in the
checkpoint itself, not the run folder's ``config.yaml``, which a later resume with other
settings may have rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from audio_core.engine.bundle import BUNDLED, bundle, relocate, restore, to_yaml_text
from audio_core.engine.checkpoint import (
    EMA_FILE,
    MODEL_FILE,
    CheckpointError,
    CheckpointManager,
    read_state,
    save_safetensors,
)
from audio_core.engine.safe_load import load_safetensors
from audio_core.engine.weights_check import (
    CONFIG_FILE,
    INFO_FILE,
    check_config_record,
    config_record_from_yaml,
    load_checked,
    read_export_info,
)
from audio_core.files import write_text
from audio_core.inference.paths import check_export_target
from audio_core.version import __version__


def _checkpoint_of(run_dir: Path, checkpoint: str | Path | None) -> Path:
    if checkpoint is not None:
        return Path(checkpoint)
    latest = CheckpointManager(run_dir / "checkpoints").latest()
    if latest is None:
        raise CheckpointError(f"{run_dir} has no complete checkpoint under "
                              f"{run_dir / 'checkpoints'}; is it a run folder?")
    return latest


def _trained_config(ckpt: Path, run_dir: Path) -> str:
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


def _weights_file(ckpt: Path, ema: bool | None) -> str:
    """``ema.safetensors`` when ``ema`` (or ``None`` and the checkpoint has EMA weights)."""
    if ema is None:
        return EMA_FILE if (ckpt / EMA_FILE).is_file() else MODEL_FILE
    if ema and not (ckpt / EMA_FILE).is_file():
        raise CheckpointError(f"{ckpt} has no EMA weights (train.ema_decay was 0)")
    return EMA_FILE if ema else MODEL_FILE


def export_run(run_dir: str | Path, out: str | Path, *, ema: bool | None = None,
               checkpoint: str | Path | None = None, registry: Any = None,
               overwrite: bool = False) -> Path:
    """Write the model of ``run_dir``'s newest (or the given) checkpoint to ``out``: its EMA
    weights when the run kept them (``ema=None``), or as ``ema`` says."""
    from audio_core.config import load_config
    from audio_core.models.build import model_type

    run_dir, out = Path(run_dir), Path(out)
    ckpt = _checkpoint_of(run_dir, checkpoint)
    name = _weights_file(ckpt, ema)
    check_export_target(run_dir, out, ckpt, overwrite=overwrite)
    tensors = CheckpointManager.load_tensors(ckpt, name)
    state = read_state(ckpt)
    config_text = _trained_config(ckpt, run_dir)
    cfg = load_config(_yaml_mapping(config_text), registry=registry)
    save_safetensors(tensors, out / MODEL_FILE)
    info = {"step": state["step"], "checkpoint": str(ckpt.resolve()),
            "weights": "ema" if name == EMA_FILE else "model",
            "model_type": model_type(cfg, registry), "audio_core_version": __version__,
            "tensors": len(tensors), **config_record_from_yaml(config_text)}
    _write_config(out, config_text, info, registry)
    write_text(out / INFO_FILE, json.dumps(info, indent=2))  # last: marks it complete
    return out


def _write_config(out: Path, config_text: str, info: dict[str, Any], registry: Any) -> None:
    """``config.yaml`` of export ``out``; the stage-1 model and frozen weights the config
    refers to are copied into ``out`` first (:mod:`audio_core.engine.bundle`), the config
    then names them relative to ``out`` and ``info`` lists them (``bundled``)."""
    data = _yaml_mapping(config_text)
    bundled = bundle(data, out, registry, export_run=export_run)
    if bundled:
        info[BUNDLED] = bundled
        config_text = to_yaml_text(data)
    write_text(out / CONFIG_FILE, config_text)


def save_export(model: nn.Module, cfg: Any, out: str | Path, registry: Any = None,
                **info: Any) -> Path:
    """Write ``model``'s weights, run config ``cfg`` and ``export.json`` (with ``info``) to
    ``out``: an export of a model built in code (a frozen encoder, a test fixture)."""
    from audio_core.config.loader import to_yaml
    from audio_core.models.build import model_type

    out, text = Path(out), to_yaml(cfg)
    tensors = model.state_dict()
    save_safetensors(tensors, out / MODEL_FILE)
    record = {"step": 0, "weights": "model", "model_type": model_type(cfg, registry),
              "audio_core_version": __version__, "tensors": len(tensors), **info,
              **config_record_from_yaml(text)}
    _write_config(out, text, record, registry)
    write_text(out / INFO_FILE, json.dumps(record, indent=2))
    return out


def init_from(model: nn.Module, path: str | Path, cfg: Any = None) -> Path:
    """Load the weights of export or run folder ``path`` (a run's newest checkpoint, its
    EMA weights when it has them) into ``model`` (``model.init``: a fine-tune's start).
    Tensor names and shapes must match the model ``cfg`` builds (an error naming the
    differing tensors otherwise); frozen parts are not in the weights and stay as built.
    Returns the weights file read."""
    from audio_core.engine.weights_check import check_state_dict

    path = Path(path)
    if (path / MODEL_FILE).is_file():
        weights = path / MODEL_FILE
    elif path.is_dir():
        ckpt = _checkpoint_of(path, None)
        weights = ckpt / _weights_file(ckpt, None)
    else:
        raise CheckpointError(f"model.init: {path} is not an export or run folder")
    tensors = load_safetensors(weights)
    check_state_dict(model, tensors, f"model.init ({weights})", cfg)
    model.load_state_dict(tensors)
    return weights


def _yaml_mapping(text: str) -> dict[str, Any]:
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
        ckpt = _checkpoint_of(path, None)
        weights = ckpt / _weights_file(ckpt, ema)
        source = _yaml_mapping(_trained_config(ckpt, path))
    if registry is None:
        from audio_core.plugins import get_registry

        registry = get_registry()
    bundled = record.get(BUNDLED)
    if bundled and isinstance(source, Path):  # copies inside the export: built from there;
        data = _yaml_mapping(source.read_text(encoding="utf-8"))  # checked as trained
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
