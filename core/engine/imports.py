"""Import models trained elsewhere as audio-core exports (``audio-core import SRC OUT``),
and export them back to other frameworks' formats (``audio-core export --format F``).

Plugins register *importers* (component kind ``importer``): classes with

- ``detect(src: Path) -> bool``: whether folder ``src`` holds a model they convert (cheap:
  read a config file, never the weights);
- ``convert(src: Path, out: Path, registry) -> Path``: build the audio-core model, load the
  converted weights and write the export with :func:`write_export`.

:func:`import_model` picks the importer (``name``, or the one whose ``detect`` accepts
``src``). The result is an ordinary export: ``audio_core.load(OUT)`` builds it, and
``export.json`` records ``"weights": "imported"`` and the source folder.

*Exporters* (component kind ``exporter``) go the other way: classes with a ``format``
(``"transformers"``), ``accepts(model) -> bool`` and ``export(model, out) -> Path``;
:func:`export_model` runs the one of the format that accepts the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audio_core.errors import AudioCoreError, format_choices, shown
from audio_core.storage.checkpoint import MODEL_FILE, save_safetensors
from audio_core.storage.weights_check import CONFIG_FILE, INFO_FILE
from audio_core.version import __version__


class ModelImportError(AudioCoreError):
    """``SRC`` cannot be imported (no importer fits, or the importer rejects its config)."""


def _registry(registry: Any) -> Any:
    if registry is not None:
        return registry
    from audio_core.plugins import get_registry

    return get_registry()


def find_importer(src: Path, name: str | None = None, registry: Any = None) -> Any:
    """The importer class for ``src``: ``name`` (``plugin.importer``) or the first whose
    ``detect(src)`` is true."""
    registry = _registry(registry)
    if name is not None:
        return registry.get("importer", name, path="--importer").resolve()
    specs = list(registry.specs("importer"))
    for spec in specs:
        importer = spec.resolve()
        if importer.detect(src):
            return importer
    names = [s.name for s in specs]
    raise ModelImportError(f"{src}: no importer recognises this folder (installed importers: "
                       f"{format_choices(names) or 'none'}); pass --importer NAME to force one "
                       f"and see its error")


def import_model(src: str | Path, out: str | Path, *, importer: str | None = None,
                 registry: Any = None) -> Path:
    """Convert the model in folder ``src`` to an audio-core export in ``out``."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ModelImportError(f"{src} is not a folder (expected a saved model folder, e.g. one "
                           f"written by transformers' save_pretrained)")
    if out.resolve() == src.resolve():
        raise ModelImportError(f"OUT {out} is the source folder; give another folder")
    registry = _registry(registry)
    return Path(find_importer(src, importer, registry).convert(src, out, registry))


def export_model(model: nn.Module, out: str | Path, fmt: str, registry: Any = None) -> Path:
    """Write ``model`` in format ``fmt`` with the first exporter of that format accepting
    it; :class:`ModelImportError` listing the exporters of ``fmt`` when none does."""
    registry = _registry(registry)
    exporters = [spec for spec in registry.specs("exporter")
                 if spec.resolve().format == fmt]
    for spec in exporters:
        exporter = spec.resolve()
        if exporter.accepts(model):
            return Path(exporter.export(model, Path(out)))
    raise ModelImportError(
        f"no {fmt} exporter accepts this {type(model).__name__} (exporters of format "
        f"{fmt}: {format_choices([s.name for s in exporters]) or 'none installed'}; see "
        f"'audio-core components --kind exporter' for the architectures each takes)")


def import_config(config: Mapping[str, Any], registry: Any = None) -> Any:
    """The validated :class:`~audio_core.config.schema.RunConfig` of mapping ``config``; an
    ``extends`` key names a preset it is merged onto (the data, losses, discriminators and
    task a fine-tune of the imported model starts from)."""
    from audio_core.config import load_config
    from audio_core.config.loader import EXTENDS_KEY, read_config_file, resolve_source
    from audio_core.config.merge import merge_config
    from audio_core.config.schema import RunConfig

    registry = _registry(registry)
    config = dict(config)
    base = config.pop(EXTENDS_KEY, None)
    if base is not None:
        config = merge_config(read_config_file(resolve_source(base, registry)), config,
                              RunConfig)
    return load_config(config, registry=registry)


def write_export(model: nn.Module, cfg: Any, out: Path, *, source: Path, importer: str,
                 registry: Any = None) -> Path:
    """Write ``model``'s fp32 state dict, run config ``cfg`` (:func:`import_config`) and
    ``export.json`` to ``out``, as :func:`audio_core.engine.export.export_run` does for a
    run."""
    from audio_core.config.loader import to_yaml
    from audio_core.files import write_text
    from audio_core.inference.paths import check_export_target
    from audio_core.models.build import model_type
    from audio_core.storage.weights_check import config_record_from_yaml

    check_export_target(source, out, source)
    text = to_yaml(cfg)
    tensors = {k: v.float() if v.is_floating_point() else v
               for k, v in model.state_dict().items()}
    save_safetensors(tensors, out / MODEL_FILE)
    write_text(out / CONFIG_FILE, text)
    info = {"step": 0, "source": str(source.resolve()), "importer": importer,
            "weights": "imported", "model_type": model_type(cfg, registry),
            "audio_core_version": __version__, "tensors": len(tensors),
            **config_record_from_yaml(text)}
    write_text(out / INFO_FILE, json.dumps(info, indent=2))
    return out


# -- reading transformers ``save_pretrained`` folders (no transformers import needed) --------
def read_hf_config(src: Path, model_type: str) -> dict[str, Any]:
    """``src/config.json`` as a dict; :class:`ModelImportError` unless its ``model_type``
    is ``model_type``."""
    file = src / "config.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelImportError(f"{file}: cannot read it ({exc}); is {src} a transformers "
                               f"save_pretrained folder?") from exc
    except ValueError as exc:
        raise ModelImportError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("model_type") != model_type:
        got = config.get("model_type") if isinstance(config, dict) else None
        raise ModelImportError(f"{file}: model_type is {got!r}, expected {model_type!r}")
    return config


def hf_model_type(src: Path) -> str | None:
    """``model_type`` of ``src/config.json``, or ``None`` (no or unreadable file)."""
    try:
        config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("model_type") if isinstance(config, dict) else None


def read_hf_weights(src: Path) -> dict[str, torch.Tensor]:
    """The tensors of a save_pretrained folder: ``model.safetensors`` (or the shards its
    ``.index.json`` names), else ``pytorch_model.bin`` read with ``weights_only=True``."""
    from safetensors.torch import load_file

    single, index = src / "model.safetensors", src / "model.safetensors.index.json"
    try:
        if single.is_file():
            return load_file(str(single))
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                                .values()))
            return {k: v for shard in shards for k, v in load_file(str(src / shard)).items()}
        legacy = src / "pytorch_model.bin"
        if legacy.is_file():
            return torch.load(legacy, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, bad header, pickled code
        raise ModelImportError(f"{src}: cannot read the weights: {type(exc).__name__}: "
                               f"{exc}") from exc
    raise ModelImportError(f"{src} holds no model.safetensors, model.safetensors.index.json "
                           f"or pytorch_model.bin")


def placed(key: str, name: str, value: torch.Tensor, target: Mapping[str, Any],
           src: Path) -> torch.Tensor:
    """Source tensor ``key``, renamed ``name``, as the built model's state dict ``target``
    holds it (its dtype); :class:`ModelImportError` naming both when ``target`` has no
    ``name`` or another shape there."""
    if name not in target:
        raise ModelImportError(f"{src}: tensor {key!r} has no place in the converted "
                               f"model (looked for {name!r}); is config.json the one "
                               f"these weights were saved with?")
    if tuple(value.shape) != tuple(target[name].shape):
        raise ModelImportError(f"{src}: tensor {key!r} has shape {tuple(value.shape)}, the "
                               f"model built from config.json expects "
                               f"{tuple(target[name].shape)} ({name})")
    return value.to(target[name].dtype)


def check_complete(converted: Mapping[str, Any], target: Mapping[str, Any], src: Path,
                   optional: tuple[str, ...] = ()) -> None:
    """:class:`ModelImportError` naming (up to 5 of) the tensors of ``target`` (the built
    model's state dict) that ``converted`` lacks; names ending in ``optional`` may be
    missing."""
    missing = [k for k in target if k not in converted and not k.endswith(optional)]
    if missing:
        raise ModelImportError(f"{src}: the weights lack {len(missing)} tensor(s) the model "
                               f"needs: {', '.join(sorted(missing)[:5])}")


class TransformersImporter:
    """Base of the importers of transformers ``save_pretrained`` folders of one
    ``model_type``. A subclass sets ``model_type`` and ``name`` (its registered
    ``plugin.importer`` name) and writes the two conversions: :meth:`run_config` (the
    folder's ``config.json`` dict -> an audio-core run config mapping) and
    :meth:`convert_weights` (the folder's tensors -> the built model's state dict);
    ``detect`` and ``convert`` are the importer protocol (module docstring)."""

    model_type: str
    name: str

    @classmethod
    def detect(cls, src: Path) -> bool:
        return hf_model_type(src) == cls.model_type

    @classmethod
    def run_config(cls, config: dict[str, Any], file: Path) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def convert_weights(cls, weights: dict[str, torch.Tensor], target: dict[str, Any],
                        config: dict[str, Any], src: Path) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @classmethod
    def convert(cls, src: Path, out: Path, registry: Any) -> Path:
        from audio_core.models.build import build_model

        config = read_hf_config(src, cls.model_type)
        cfg = import_config(cls.run_config(config, src / "config.json"), registry)
        model = build_model(cfg, registry, loading=True)
        model.load_state_dict(cls.convert_weights(read_hf_weights(src), model.state_dict(),
                                                  config, src))
        return write_export(model, cfg, out, source=src, importer=cls.name,
                            registry=registry)


def check_fields(config: Mapping[str, Any], file: Path, required: tuple[str, ...] = (),
                 positive_ints: tuple[str, ...] = ()) -> None:
    """:class:`ModelImportError` naming ``file`` and the field(s) unless every ``required``
    field is present and every ``positive_ints`` field present is an integer >= 1 (a JSON
    ``true`` is not)."""
    missing = [k for k in required if k not in config]
    if missing:
        raise ModelImportError(f"{file}: missing field(s) {', '.join(missing)}")
    for key in positive_ints:
        value = config.get(key)
        if key in config and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
            raise ModelImportError(f"{file}: {key} = {shown(value)} must be a positive "
                                   f"integer")


def positive_int_list(config: Mapping[str, Any], key: str, file: Path) -> list[int]:
    """``config[key]``; :class:`ModelImportError` naming the file and field unless it is a
    non-empty list of integers >= 1."""
    value = config.get(key)
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        raise ModelImportError(f"{file}: {key} must be a non-empty list of positive integers, "
                               f"got {shown(value)}")
    return value


def check_choice(config: Mapping[str, Any], key: str, allowed: Any, file: Path) -> Any:
    """``config[key]``; :class:`ModelImportError` naming the file, the field and the
    supported values unless it is one of ``allowed``."""
    value = config.get(key)
    if value not in allowed:
        raise ModelImportError(f"{file}: {key} = {shown(value)} is not supported; supported: "
                               f"{', '.join(repr(a) for a in allowed)}")
    return value
