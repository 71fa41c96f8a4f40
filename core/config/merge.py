"""Merging config layers (``extends:`` bases, the file, ``key=value`` overrides).

Mappings merge key by key and other values (lists included) replace, as in OmegaConf, with
two rules for component references (``{name, params}`` fields of the schema):

- changing a component's ``name`` replaces the whole reference: the new component gets
  only the ``params`` given with the new name, none of the old component's (whose
  parameters it would not know): ``data.train.name=core.folder data.train.params.root=DIR``
  over the synthetic preset dataset gives ``{name: core.folder, params: {root: DIR}}``;
- any mapping carrying ``_replace_: true`` replaces the mapping below it instead of being
  merged into it, e.g. ``params: {_replace_: true, dim: 64}`` drops the base's other params.

A mapping with integer keys merged onto a list edits items of that list:
``model.losses[1].weight=2`` (or ``model.losses.1.weight=2``) changes the second loss only;
an index past the end is a :class:`~audio_core.errors.ConfigError`.
"""

from __future__ import annotations

import copy
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from audio_core.errors import ConfigError

#: Key of a mapping that replaces, rather than merges into, the mapping below it.
REPLACE_KEY = "_replace_"


def attrs_class(tp: Any) -> type | None:
    """The attrs class inside ``tp`` (``X``, ``X | None``, ``list[X]``), if any."""
    if attrs.has(tp):
        return tp
    for arg in typing.get_args(tp):
        found = attrs_class(arg)
        if found is not None:
            return found
    return None


def _strip(value: Any) -> Any:
    """``value`` without replace markers (a deep copy)."""
    if isinstance(value, Mapping):
        return {k: _strip(v) for k, v in value.items() if k != REPLACE_KEY}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)


def _renamed(base: Any, over: Any) -> bool:
    return (isinstance(base, Mapping) and isinstance(over, Mapping) and "name" in over
            and over["name"] != base.get("name"))


def _merge_items(base: list, over: Mapping[Any, Any], cls: type | None, path: str) -> list:
    """``over`` (``{index: value}``) merged onto the items of list ``base``."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        index = int(key)
        if not 0 <= index < len(out):
            raise ConfigError(f"{path}[{index}] does not exist: {path} has {len(out)} "
                              f"item(s); to add or remove items, give the whole list", path)
        item = out[index]
        out[index] = (_strip(value) if cls is not None and attrs.has(cls)
                      and "name" in [f.name for f in attrs.fields(cls)] and _renamed(item, value)
                      else merge_config(item, value, cls, f"{path}[{index}]"))
    return out


def _indices(over: Any) -> bool:
    return isinstance(over, Mapping) and bool(over) and all(
        isinstance(k, int) or (isinstance(k, str) and k.isdigit()) for k in over)


def merge_config(base: Any, over: Any, cls: type | None = None, path: str = "") -> Any:
    """``over`` merged onto ``base`` (plain containers; neither is modified).

    ``cls`` is the attrs schema class of this level (``RunConfig`` at the top); it tells
    which fields are component references. Without it, mappings merge plainly. ``path``
    (dotted) is where this level sits, for messages.
    """
    if isinstance(base, list) and _indices(over):
        return _merge_items(base, over, cls, path)
    if not isinstance(base, Mapping) or not isinstance(over, Mapping) \
            or over.get(REPLACE_KEY) is True:
        return _strip(over)
    fields = {f.name: f for f in attrs.fields(cls)} if cls is not None and attrs.has(cls) \
        else {}
    hints = typing.get_type_hints(cls) if fields else {}
    out = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in over.items():
        if key == REPLACE_KEY:
            continue
        field = fields.get(key)
        is_component = field is not None and "kind" in field.metadata
        if key in out and is_component and _renamed(out[key], value):
            out[key] = _strip(value)
        elif key in out and is_component and typing.get_origin(hints[key]) is dict:
            out[key] = _merge_named(out[key], value, attrs_class(hints[key]),
                                    f"{path}.{key}" if path else key)
        elif key in out:
            target = attrs_class(hints[key]) if field is not None else None
            out[key] = merge_config(out[key], value, target, f"{path}.{key}" if path else key)
        else:
            out[key] = _strip(value)
    return out


def _merge_named(base: Any, over: Any, cls: type | None, path: str) -> Any:
    """A NAME -> component mapping (``model.conditioners``): entries merge one by one, with
    the renaming rule applied to each."""
    if not isinstance(base, Mapping) or not isinstance(over, Mapping) \
            or over.get(REPLACE_KEY) is True:
        return _strip(over)
    out = {k: copy.deepcopy(v) for k, v in base.items()}
    for name, entry in over.items():
        if name == REPLACE_KEY:
            continue
        if name in out and not _renamed(out[name], entry):
            out[name] = merge_config(out[name], entry, cls, f"{path}.{name}")
        else:
            out[name] = _strip(entry)
    return out
