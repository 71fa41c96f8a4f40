"""Does a config still describe the weights stored beside it?

An export holds ``model.safetensors`` and the ``config.yaml`` that rebuilds the module.
Editing that config (another width, another sample rate) must not load silently or end in
a raw size-mismatch traceback:

- :func:`config_record` is written into ``export.json`` at export time: the config's model
  section plus ``data.sample_rate``/``data.channels`` and a SHA-256 fingerprint of them;
- :func:`check_config_record` compares it with the config being loaded and names every key
  that changed (so a sample rate edit, which changes no tensor shape, is caught too);
- :func:`check_state_dict` compares tensor names and shapes with the module the config
  builds and names the config sections that most likely differ.
"""

from __future__ import annotations

import hashlib
import json
import typing
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from audio_core.errors import AudioCoreError, shortened
from audio_core.files import check_readable

#: The files of an export folder beside the weights (``model.safetensors``).
CONFIG_FILE = "config.yaml"
INFO_FILE = "export.json"

#: Data keys that change what a model computes without changing its tensors.
DATA_KEYS = ("sample_rate", "channels")


class WeightsMismatchError(AudioCoreError):
    """Weights and the config meant to rebuild their module do not match."""


def _plain(cfg: Any) -> dict[str, Any]:
    """A :class:`RunConfig` (or a mapping of one) as plain, resolved containers."""
    if isinstance(cfg, Mapping):
        return json.loads(json.dumps(cfg, default=str))
    from omegaconf import OmegaConf

    return typing.cast(dict[str, Any], OmegaConf.to_container(OmegaConf.structured(cfg),
                                                              resolve=True))


def model_section(cfg: Any) -> dict[str, Any]:
    """What decides an exported model: ``model`` and ``data.{sample_rate,channels}``."""
    data = _plain(cfg)
    model = dict(data.get("model") or {})
    model.pop("init", None)  # where training started, not what the weights are
    if not model.get("conditioners"):  # unset: as in exports written before the key existed
        model.pop("conditioners", None)
    return {"model": model,
            "data": {k: (data.get("data") or {}).get(k) for k in DATA_KEYS}}


def fingerprint(section: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-256 over ``section`` as sorted-key JSON."""
    blob = json.dumps(section, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(b"audio-core config fingerprint v1\n" + blob).hexdigest()[:16]


def config_record(cfg: Any) -> dict[str, Any]:
    """``{"config_fingerprint", "model_config"}`` for ``export.json``."""
    section = model_section(cfg)
    return {"config_fingerprint": fingerprint(section), "model_config": section}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def diff_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every leaf that differs between two nested mappings."""
    a, b = _flatten(before), _flatten(after)
    missing = "(absent)"
    return [f"{key}: {a.get(key, missing)!r} -> {b.get(key, missing)!r}"
            for key in sorted(a.keys() | b.keys()) if a.get(key, missing) != b.get(key, missing)]


def check_config_record(record: Mapping[str, Any], cfg: Any, source: str) -> None:
    """:class:`WeightsMismatchError` when ``cfg`` is not the config ``record``
    (:func:`config_record`, read from ``export.json``) was written for. Records without a
    fingerprint (exports of older versions) pass."""
    stored = record.get("config_fingerprint")
    if not stored:
        return
    section = model_section(cfg)
    if fingerprint(section) == stored:
        return
    changes = diff_keys(record.get("model_config") or {}, section)
    listed = shortened(changes, 8, "; ")
    raise WeightsMismatchError(
        f"{source}: the config no longer describes the model the weights were trained as "
        f"(fingerprint {stored} when written, {fingerprint(section)} now). Changed: "
        f"{listed or 'unknown keys'}. Restore those values; a model with other settings "
        f"needs training (or fine-tuning) of its own.")


def _likely_keys(names: list[str], cfg: Any) -> list[str]:
    """Config sections owning the tensors ``names`` (``encoder.x`` -> ``model.encoder``)."""
    model = getattr(cfg, "model", None)
    found = []
    for name in names:
        head = name.split(".", 1)[0]
        owner = f"model.{head}.params" if model is not None and hasattr(model, head) \
            else f"the component owning '{head}'"
        if owner not in found:
            found.append(owner)
    return found


def check_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str,
                     cfg: Any = None) -> None:
    """:class:`WeightsMismatchError` unless ``state_dict`` has exactly ``module``'s tensor
    names and shapes; the message lists the differences (first few of each kind) and the
    config keys that most likely differ."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    missing = sorted(expected.keys() - got.keys())
    unexpected = sorted(got.keys() - expected.keys())
    reshaped = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
    if not (missing or unexpected or reshaped):
        return
    parts = []
    if reshaped:
        parts.append("shape differs for " + ", ".join(
            f"{k} (weights {got[k]}, config builds {expected[k]})" for k in reshaped[:4]))
    if missing:
        parts.append(f"{len(missing)} tensor(s) the config builds are not in the weights "
                     f"({', '.join(missing[:4])})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensor(s) in the weights are not built by the config "
                     f"({', '.join(unexpected[:4])})")
    keys = _likely_keys(reshaped + missing + unexpected, cfg)
    raise WeightsMismatchError(
        f"{source}: the weights do not fit the model its config builds: {'; '.join(parts)}. "
        f"Most likely the config differs in {', '.join(keys)} from the run that wrote the "
        f"weights.")


def load_checked(module: nn.Module, tensors: Mapping[str, torch.Tensor], source: str,
                 cfg: Any = None) -> nn.Module:
    """:func:`check_state_dict`, then ``module.load_state_dict(tensors, strict=True)``."""
    check_state_dict(module, tensors, source, cfg)
    module.load_state_dict(dict(tensors), strict=True)
    return module


def config_record_from_yaml(text: str) -> dict[str, Any]:
    """:func:`config_record` of a resolved run config given as YAML (a checkpoint's copy)."""
    from omegaconf import OmegaConf

    from audio_core.config.loader import load_config
    from audio_core.errors import ConfigError

    data = typing.cast(dict[str, Any],
                       OmegaConf.to_container(OmegaConf.create(text), resolve=False))
    try:
        return config_record(load_config(data, check_components=False))
    except ConfigError:  # a config older checks accepted: record it as written
        return config_record(data)


def read_export_info(path: Any, required: bool = False) -> dict[str, Any]:
    """``export.json`` of an export folder as a dict (``{}`` when absent or unreadable). With
    ``required``, an absent, unreadable or garbled file is :class:`WeightsMismatchError`
    naming it: without its config record the config-edit check cannot run, and a model
    would run with whatever its ``config.yaml`` now says (another sample rate)."""
    from pathlib import Path

    file = Path(path)
    check_readable(file, "export info")  # unreadable is not "damaged"
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        if required:
            raise WeightsMismatchError(
                f"{file} is missing: {file.parent} is not a complete export (it records the "
                f"config the weights were trained with). Export the run again with "
                f"`audio-core export RUN_DIR {file.parent}`") from exc
        return {}
    except (OSError, ValueError) as exc:
        if required:
            raise WeightsMismatchError(f"{file} cannot be read as JSON ({exc}); the export "
                                       f"is damaged: export the run again") from exc
        return {}
    if required and (not isinstance(info, dict) or not isinstance(
            info.get("config_fingerprint", ""), str) or not isinstance(
            info.get("model_config", {}), dict)):
        raise WeightsMismatchError(f"{file} is not an export record (expected a JSON object "
                                   f"with config_fingerprint and model_config); the export "
                                   f"is damaged: export the run again")
    return info if isinstance(info, dict) else {}


def check_resume_config(checkpoint: Any, cfg: Any) -> None:
    """:class:`WeightsMismatchError` when ``cfg`` (the config a resumed run uses, with its
    overrides) builds another model than the one checkpoint ``checkpoint`` was trained
    with (its ``trainer_state.json`` keeps that config). Settings outside the model section
    (``train.*``, data sources, ...) may change on resume."""
    from pathlib import Path

    state = read_export_info(Path(checkpoint) / "trainer_state.json")
    if state.get("config"):
        check_config_record(config_record_from_yaml(state["config"]), cfg,
                            f"--resume {checkpoint}")
