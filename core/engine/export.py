"""Export a run's model to consolidated safetensors + its resolved config, and load it back.

``export_run(RUN_DIR, OUT)`` writes::

    OUT/model.safetensors   fp32 weights of the model (its EMA weights when EMA was on)
    OUT/config.yaml         the resolved run config
    OUT/export.json         step, source checkpoint, weights kind, model type, audio-core
                            version, and the fingerprint of the config's model section (see
                            :mod:`audio_core.storage.weights_check`)
    OUT/discriminators.safetensors
                            only with ``with_discriminators=True`` (``export
                            --with-discriminators``): an adversarial run's discriminators,
                            recorded under ``"discriminators"`` in export.json (their config
                            entries and fingerprint); a fine-tune starts its discriminators
                            from them with ``train.init_discriminators=true``

The export is the whole inference model (:mod:`audio_core.models`): ``load(PATH)`` builds
it with its own class from the config (never a training task, loss or discriminator),
loads the weights and returns it in eval mode with ``.config`` set to the run config.
Frozen parts (a pretrained or seeded encoder, a stage-1 model) are rebuilt from their
reference in the config. The stage-1 model and local frozen weights the config names are
copied into the export (``OUT/stage1/``, ``OUT/frozen/<slot>/``) and named relative to it
(:mod:`audio_core.storage.bundle`), so an export folder can be moved or shared. ``PATH`` is
an export folder or a run folder (its newest checkpoint). Both use the config stored in the
checkpoint itself, not the run folder's ``config.yaml``, which a later resume with other
settings may have rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from audio_core.files import write_text
from audio_core.inference.paths import check_export_target
from audio_core.models.loading import (
    checkpoint_of,
    trained_config,
    weights_file,
    yaml_mapping,
)
from audio_core.storage.bundle import BUNDLED, bundle, to_yaml_text
from audio_core.storage.checkpoint import (
    EMA_FILE,
    MODEL_FILE,
    CheckpointError,
    CheckpointManager,
    read_state,
    save_safetensors,
)
from audio_core.storage.safe_load import load_safetensors
from audio_core.storage.weights_check import (
    CONFIG_FILE,
    INFO_FILE,
    config_record_from_yaml,
    load_checked,
    read_export_info,
)
from audio_core.version import __version__

#: the optional part of an export: an adversarial run's discriminators (fp32)
DISCRIMINATORS_FILE = "discriminators.safetensors"
#: where a checkpoint keeps them (the "discriminator" engine role, consolidated)
CHECKPOINT_DISCRIMINATORS = "discriminator.safetensors"


def export_run(run_dir: str | Path, out: str | Path, *, ema: bool | None = None,
               checkpoint: str | Path | None = None, registry: Any = None,
               overwrite: bool = False, with_discriminators: bool = False) -> Path:
    """Write the model of ``run_dir``'s newest (or the given) checkpoint to ``out``: its EMA
    weights when the run kept them (``ema=None``), or as ``ema`` says. With
    ``with_discriminators``, also the run's discriminators (:func:`export_discriminators`)."""
    from audio_core.config import load_config
    from audio_core.models.build import model_type

    run_dir, out = Path(run_dir), Path(out)
    ckpt = checkpoint_of(run_dir, checkpoint)
    name = weights_file(ckpt, ema)
    check_export_target(run_dir, out, ckpt, overwrite=overwrite)
    tensors = CheckpointManager.load_tensors(ckpt, name)
    state = read_state(ckpt)
    config_text = trained_config(ckpt, run_dir)
    cfg = load_config(yaml_mapping(config_text), registry=registry)
    save_safetensors(tensors, out / MODEL_FILE)
    info = {"step": state["step"], "checkpoint": str(ckpt.resolve()),
            "weights": "ema" if name == EMA_FILE else "model",
            "model_type": model_type(cfg, registry), "audio_core_version": __version__,
            "tensors": len(tensors), **config_record_from_yaml(config_text)}
    if with_discriminators:
        info["discriminators"] = export_discriminators(ckpt, out, cfg)
    elif (out / DISCRIMINATORS_FILE).is_file():  # an earlier export's, not of these weights
        (out / DISCRIMINATORS_FILE).unlink()
    _write_config(out, config_text, info, registry)
    write_text(out / INFO_FILE, json.dumps(info, indent=2))  # last: marks it complete
    return out


def _write_config(out: Path, config_text: str, info: dict[str, Any], registry: Any) -> None:
    """``config.yaml`` of export ``out``; the stage-1 model and frozen weights the config
    refers to are copied into ``out`` first (:mod:`audio_core.storage.bundle`), the config
    then names them relative to ``out`` and ``info`` lists them (``bundled``)."""
    data = yaml_mapping(config_text)
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
    from audio_core.storage.weights_check import check_state_dict

    path = Path(path)
    if (path / MODEL_FILE).is_file():
        weights = path / MODEL_FILE
    elif path.is_dir():
        ckpt = checkpoint_of(path, None)
        weights = ckpt / weights_file(ckpt, None)
    else:
        raise CheckpointError(f"model.init: {path} is not an export or run folder")
    tensors = load_safetensors(weights)
    check_state_dict(model, tensors, f"model.init ({weights})", cfg)
    model.load_state_dict(tensors)
    return weights


def _discriminators_record(cfg: Any) -> dict[str, Any]:
    """``{"config": model.discriminators as plain data, "config_fingerprint": ...}``."""
    from audio_core.storage.weights_check import _plain, fingerprint

    entries = _plain(cfg).get("model", {}).get("discriminators") or []
    return {"config": entries, "config_fingerprint": fingerprint({"discriminators": entries})}


def export_discriminators(ckpt: Path, out: Path, cfg: Any) -> dict[str, Any]:
    """Copy checkpoint ``ckpt``'s discriminator weights to ``out/discriminators.safetensors``;
    returns their ``export.json`` record (file, tensor count, config entries, fingerprint).
    :class:`CheckpointError` when the checkpoint has none (not an adversarial run, or one
    saved by an older audio-core)."""
    if not cfg.model.discriminators:
        raise CheckpointError(f"--with-discriminators: the run of {ckpt} has no "
                              f"model.discriminators (not an adversarial run)")
    source = Path(ckpt) / CHECKPOINT_DISCRIMINATORS
    if not source.is_file():
        raise CheckpointError(f"--with-discriminators: {source} does not exist (a checkpoint "
                              f"saved before audio-core kept discriminator weights); resume "
                              f"the run for one step to write a checkpoint that has them")
    tensors = CheckpointManager.load_tensors(ckpt, CHECKPOINT_DISCRIMINATORS)
    save_safetensors(tensors, out / DISCRIMINATORS_FILE)
    return {"file": DISCRIMINATORS_FILE, "tensors": len(tensors), **_discriminators_record(cfg)}


def init_discriminators(discriminators: nn.Module, path: str | Path, cfg: Any) -> Path:
    """Load the discriminator weights of export or run folder ``path`` (``model.init``) into
    ``discriminators`` (``train.init_discriminators``: an adversarial fine-tune continues
    against trained discriminators). An export must hold ``discriminators.safetensors``
    (``audio-core export RUN OUT --with-discriminators``); a run folder gives its newest
    checkpoint's. A ``model.discriminators`` entry that differs from the one the weights
    were saved with is a :class:`WeightsMismatchError` naming the key. Returns the file."""
    from audio_core.config.loader import load_config
    from audio_core.storage.weights_check import WeightsMismatchError, diff_keys

    path = Path(path)
    if (path / MODEL_FILE).is_file():
        weights = path / DISCRIMINATORS_FILE
        record = (read_export_info(path / INFO_FILE).get("discriminators") or {})
        saved = record.get("config")
        hint = f"export it with `audio-core export RUN {path} --with-discriminators`"
    elif path.is_dir():
        ckpt = checkpoint_of(path, None)
        weights = ckpt / CHECKPOINT_DISCRIMINATORS
        run_cfg = load_config(yaml_mapping(trained_config(ckpt, path)),
                              check_components=False)
        saved = _discriminators_record(run_cfg)["config"]
        hint = "its run was not adversarial or predates saved discriminator weights"
    else:
        raise CheckpointError(f"train.init_discriminators: model.init {path} is not an "
                              f"export or run folder")
    if not weights.is_file():
        raise CheckpointError(f"train.init_discriminators: {weights} does not exist ({hint})")
    if saved is not None:
        changes = diff_keys({"model.discriminators": saved},
                            {"model.discriminators": _discriminators_record(cfg)["config"]})
        if changes:
            raise WeightsMismatchError(
                f"train.init_discriminators: {weights} was saved for other discriminators: "
                f"{'; '.join(changes[:4])}; set those values back or drop "
                f"train.init_discriminators to start them fresh")
    tensors = load_safetensors(weights)
    load_checked(discriminators, tensors, f"train.init_discriminators ({weights})", cfg)
    return weights
