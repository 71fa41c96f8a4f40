"""Flatten nested configs into the ``{"a.b.c": value}`` form trackers store as params."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

Scalar = str | int | float | bool | None


def _children(value: Any) -> Mapping[str, Any] | None:
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=False)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return {str(i): v for i, v in enumerate(value)}
    return None


def flatten_params(params: Any, prefix: str = "", sep: str = ".") -> dict[str, Scalar]:
    """Nested mappings, sequences, attrs and dataclass instances -> flat ``{dotted.key: v}``.

    Sequence items get their index as key (``losses.0.weight``); empty containers are kept as
    ``"[]"``/``"{}"``; leaves that are not str/int/float/bool/None become ``str(value)``.
    Works on OmegaConf containers too (resolve interpolations first).
    """
    children = _children(params)
    if children is None:
        leaf = params if isinstance(params, Scalar) else str(params)
        return {prefix: leaf} if prefix else {"value": leaf}
    if not children and prefix:
        return {prefix: "{}" if isinstance(params, Mapping) else "[]"}
    flat: dict[str, Scalar] = {}
    for key, value in children.items():
        flat.update(flatten_params(value, f"{prefix}{sep}{key}" if prefix else key, sep))
    return flat
