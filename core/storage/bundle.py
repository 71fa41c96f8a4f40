"""Self-contained exports: the local files a model config refers to travel inside the export.

A stage-2 model names its stage-1 model (``model.params.stage1``, an export or run folder) and
a frozen encoder or text encoder may name local pretrained weights
(``model.<slot>.params.pretrained`` or ``.path``, at any depth of the model section). An
export copies each of them into its own folder::

    EXPORT/stage1/            the stage-1 export (itself self-contained: recursive)
    EXPORT/frozen/<slot>/     frozen weights of ``model.<slot>`` (a folder or a file)

and rewrites its ``config.yaml`` to name them relative to the export folder. ``export.json``
lists them under ``bundled``: ``{"model.params.stage1": {"path": "stage1", "original":
"runs/stage1/export"}}``. :func:`relocate` resolves them against the export folder when it is
loaded (from any working directory, after the folder is moved or copied elsewhere);
:func:`restore` gives the config the model was trained with (the original values), which the
config fingerprint and the stage-1 fingerprint check are computed on.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from audio_core.errors import AudioCoreError
from audio_core.files import write_text

#: ``export.json`` key listing the bundled references.
BUNDLED = "bundled"
STAGE1 = ("model", "params", "stage1")
#: Component params naming local weights a model loads when it is built.
WEIGHT_PARAMS = ("pretrained", "path")


class BundleError(AudioCoreError):
    """A bundled reference of an export is missing or points outside the export folder."""


def references(data: Mapping[str, Any]) -> Iterator[tuple[tuple[str, ...], str, Path]]:
    """``(key path, folder in the export, source)`` of each local file or folder the model
    section of config ``data`` (a plain mapping) refers to and that exists now."""
    model = data.get("model") or {}
    stage1 = (model.get("params") or {}).get("stage1")
    if isinstance(stage1, str) and stage1:
        yield STAGE1, "stage1", Path(stage1).expanduser()
    yield from _weights(model, ("model",))


def _weights(node: Any, keys: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str, Path]]:
    if isinstance(node, Mapping):
        params = node.get("params")
        if "name" in node and isinstance(params, Mapping):
            for name in WEIGHT_PARAMS:
                value = params.get(name)
                if isinstance(value, str) and value and Path(value).expanduser().exists():
                    slot = "_".join(keys[1:]) or "model"
                    yield (*keys, "params", name), f"frozen/{slot}", Path(value).expanduser()
        for key, value in node.items():
            if key != "params":
                yield from _weights(value, (*keys, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _weights(value, (*keys, str(i)))


def _get(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        data = data[int(key)] if isinstance(data, list) else data[key]
    return data


def _set(data: Any, keys: tuple[str, ...], value: Any) -> None:
    parent = _get(data, keys[:-1])
    if isinstance(parent, list):
        parent[int(keys[-1])] = value
    else:
        parent[keys[-1]] = value


def bundle(data: dict[str, Any], out: Path, registry: Any,
           export_run: Callable[..., Path]) -> dict[str, dict[str, str]]:
    """Copy every reference of config ``data`` into export folder ``out`` and rewrite
    ``data`` (in place) to name the copies relative to ``out``; returns the ``bundled``
    record of ``export.json``. A stage-1 export folder is copied (made self-contained
    recursively), a stage-1 run folder exported; frozen weights are copied as they are."""
    record: dict[str, dict[str, str]] = {}
    for keys, folder, source in list(references(data)):
        dest = out / folder
        if dest.is_dir():
            shutil.rmtree(dest)
        elif dest.exists():
            dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if keys == STAGE1:
            copy_model(source, dest, registry, export_run)
        elif source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy2(source, dest)
        record[".".join(keys)] = {"path": folder, "original": str(_get(data, keys))}
        _set(data, keys, folder)
    return record


def copy_model(source: Path, dest: Path, registry: Any, export_run: Callable[..., Path]) -> Path:
    """Export or run folder ``source`` as a self-contained export at ``dest`` (a run folder
    through ``export_run``, :func:`audio_core.engine.export.export_run`)."""
    from audio_core.storage.checkpoint import MODEL_FILE
    from audio_core.storage.weights_check import CONFIG_FILE, INFO_FILE, read_export_info

    if not source.is_dir():
        raise BundleError(f"model.params.stage1: {source} does not exist (the stage-1 export "
                          f"or run folder to copy into the export)")
    if not (source / MODEL_FILE).is_file():
        return export_run(source, dest, registry=registry)
    info = read_export_info(source / INFO_FILE, required=True)
    if BUNDLED in info or not any(references(_mapping((source / CONFIG_FILE).read_text(
            encoding="utf-8")))):
        shutil.copytree(source, dest)  # already self-contained
        return dest
    dest.mkdir(parents=True)
    shutil.copy2(source / MODEL_FILE, dest / MODEL_FILE)
    data = _mapping((source / CONFIG_FILE).read_text(encoding="utf-8"))
    info[BUNDLED] = bundle(data, dest, registry, export_run)
    write_text(dest / CONFIG_FILE, to_yaml_text(data))
    write_text(dest / INFO_FILE, json.dumps(info, indent=2))
    return dest


def _mapping(text: str) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.create(text))  # type: ignore[return-value]


def to_yaml_text(data: Mapping[str, Any]) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(dict(data)))


def _entries(bundled: Any, where: Path) -> Iterator[tuple[tuple[str, ...], str, str]]:
    if not isinstance(bundled, Mapping):
        raise BundleError(f"{where}/export.json: '{BUNDLED}' must be a mapping of config keys "
                          f"to {{path, original}}, got {type(bundled).__name__}")
    for key, entry in bundled.items():
        rel = entry.get("path") if isinstance(entry, Mapping) else None
        if not isinstance(rel, str) or not rel or PurePosixPath(rel).is_absolute() \
                or ".." in PurePosixPath(rel).parts:
            raise BundleError(f"{where}/export.json: bundled '{key}' must name a folder inside "
                              f"the export, got {rel!r}")
        yield tuple(str(key).split(".")), rel, str(entry.get("original", rel))


def relocate(data: Mapping[str, Any], folder: Path, bundled: Any) -> dict[str, Any]:
    """A copy of config ``data`` with each bundled reference resolved against export
    ``folder`` (absolute), for building the model; :class:`BundleError` when a copy is
    missing."""
    out = copy.deepcopy(dict(data))
    root = folder.resolve()
    for keys, rel, _ in _entries(bundled, folder):
        target = root / rel
        if not target.exists():
            raise BundleError(f"{target} is missing: the export {folder} bundles "
                              f"{'.'.join(keys)} there. Copy the whole export folder")
        _set(out, keys, str(target))
    return out


def restore(data: Mapping[str, Any], folder: Path, bundled: Any) -> dict[str, Any]:
    """A copy of config ``data`` with each bundled reference set back to the value it had
    when the model was trained (what fingerprints are computed on)."""
    out = copy.deepcopy(dict(data))
    for keys, _, original in _entries(bundled, folder):
        _set(out, keys, original)
    return out
