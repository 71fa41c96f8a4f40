"""Several named conditioners as one: batch values -> one :class:`Conditioning`.

``model.conditioners: {NAME: {name: <conditioner>, params: {...}, key: <batch key(s)>}}``
builds one conditioner per entry; ``key`` defaults to the component's ``input_key`` (a list
for a conditioner reading several keys, e.g. ``core.timing``). The single
``model.conditioner: {name, params}`` is a shorthand for a one-entry dict whose NAME is the
component's ``input_key`` (``text``, ``label``; ``timing`` for ``core.timing``,
``condition`` for none).

:class:`ConditionerSet` gives each conditioner's :class:`Conditioning` (embeddings
``(batch, tokens_i, dim)``) and concatenates them along tokens: ``(batch, sum tokens_i,
dim)``, masks likewise. Every conditioner must have the same ``dim``. Its null condition is
the concatenation of every conditioner's null embedding, so classifier-free guidance drops
all conditions of an example together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from audio_core.contracts.components import Conditioner
from audio_core.contracts.records import Conditioning
from audio_core.errors import AudioCoreError, ConfigError, format_choices


class ConditioningError(AudioCoreError, ValueError):
    """Bad conditioning values: an unknown conditioner name, a bad value, a missing key."""


def concat_tokens(parts: Sequence[Conditioning]) -> Conditioning:
    """``parts`` (same batch and dim) concatenated along tokens: ``(batch, sum tokens,
    dim)`` embeddings and ``(batch, sum tokens)`` mask."""
    if len(parts) == 1:
        return parts[0]
    device = parts[0].embeddings.device
    return Conditioning(torch.cat([p.embeddings.to(parts[0].embeddings) for p in parts], 1),
                        torch.cat([p.mask.to(device) for p in parts], 1))


def own_keys(conditioner: Conditioner) -> tuple[str, ...]:
    """The component's ``input_key`` as a tuple (``()`` for none)."""
    key = conditioner.input_key
    if key is None:
        return ()
    return (key,) if isinstance(key, str) else tuple(key)


def shorthand_name(conditioner: Conditioner) -> str:
    """NAME of a single ``model.conditioner``: its key, ``timing``, or ``condition``."""
    keys = own_keys(conditioner)
    if len(keys) == 1:
        return keys[0]
    return "timing" if keys == ("seconds_start", "seconds_total") else "condition"


def check_name(name: str) -> None:
    """A :class:`ConfigError` unless ``name`` (a key of ``model.conditioners``) is an
    identifier: it names a submodule and ``--cond NAME=VALUE``."""
    if not str(name).isidentifier():
        where = f"model.conditioners.{name}"
        raise ConfigError(f"{where}: a conditioner name must be an identifier (letters, "
                          f"digits, _), got {name!r}", where)


def batch_keys(conditioner: Conditioner, key: Any, where: str) -> tuple[str, ...]:
    """The batch keys an entry reads: its config ``key`` (a string or a list) or the
    component's ``input_key``; a :class:`ConfigError` at ``where`` on a count mismatch."""
    own = own_keys(conditioner)
    if key is None:
        return own
    keys = (key,) if isinstance(key, str) else tuple(key)
    if not keys or not all(isinstance(k, str) and k for k in keys) or len(keys) != len(own):
        want = "no key (it reads nothing)" if not own else \
            f"{len(own)} key(s) (like {', '.join(own)})"
        raise ConfigError(f"{where}: {type(conditioner).__name__} takes {want}, got {key!r}",
                          where)
    return keys


class ConditionerSet:
    """Named conditioners (config order) and the batch keys each reads; see the module
    docstring. ``modules`` are owned (registered) by the model; this object only reads
    them."""

    def __init__(self, modules: Mapping[str, Conditioner],
                 keys: Mapping[str, tuple[str, ...]]) -> None:
        self.modules = dict(modules)
        self.keys = {name: tuple(keys[name]) for name in self.modules}
        dims = [(name, int(m.dim)) for name, m in self.modules.items()]
        first, self.dim = dims[0] if dims else ("", 0)
        for name, dim in dims:
            if dim != self.dim:
                raise ConfigError(f"model.conditioners: '{first}' has dim {self.dim} but "
                                  f"'{name}' has dim {dim}; their tokens are concatenated, so "
                                  f"give every conditioner the same dim",
                                  f"model.conditioners.{name}")

    def __len__(self) -> int:
        return len(self.modules)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.modules)

    def reading(self, key: str) -> str | None:
        """The name of the conditioner that reads exactly batch key ``key``, if one does."""
        return next((n for n, k in self.keys.items() if k == (key,)), None)

    # -- to conditioning ----------------------------------------------------------------
    def null(self, batch: int) -> Conditioning:
        """Every conditioner's null embedding, concatenated: ``(batch, tokens, dim)``."""
        return concat_tokens([m.null(batch) for m in self.modules.values()])

    def __call__(self, inputs: Mapping[str, Any], batch: int) -> Conditioning:
        """``inputs`` (NAME -> batch values; a missing or ``None`` entry: that conditioner's
        null embedding) -> the concatenated :class:`Conditioning`."""
        parts = []
        for name, module in self.modules.items():
            values = inputs.get(name)
            parts.append(module.null(batch) if values is None or not self.keys[name]
                         else module(values))
        return concat_tokens(parts)

    # -- from a batch ---------------------------------------------------------------------
    def from_batch(self, batch: Mapping[str, Any], dataset: str,
                   device: torch.device | None = None) -> dict[str, Any]:
        """NAME -> batch values read from a training ``batch`` (a conditioner with several
        keys gets ``{own key: values}``); a :class:`ConditioningError` naming ``dataset``
        and the key when the batch lacks one."""
        out: dict[str, Any] = {}
        for name, module in self.modules.items():
            keys = self.keys[name]
            for key in keys:
                if key not in batch:
                    raise ConditioningError(
                        f"conditioner '{name}' ({type(module).__name__}) reads batch key "
                        f"'{key}', but dataset {dataset} does not supply it (its items have "
                        f"{format_choices(sorted(batch))}); use a dataset that does or set "
                        f"model.conditioners.{name}.key")
            values = [_to(batch[k], device) for k in keys]
            if len(keys) == 1:
                out[name] = values[0]
            elif keys:
                out[name] = dict(zip(own_keys(module), values, strict=True))
        return out

    # -- from a user ----------------------------------------------------------------------
    def from_user(self, conditioning: Any, num_samples: int) -> dict[str, Any]:
        """``generate``'s ``conditioning`` -> NAME -> batch values for ``num_samples``.

        ``conditioning``: ``None``; a mapping NAME -> value (or a list of one value per
        sample), names from this set; or, for a model with one conditioner, its value
        alone. Each value goes through the conditioner's ``parse_value``.
        """
        if conditioning is None or not self.modules:
            return {}
        if not (isinstance(conditioning, Mapping) and set(conditioning) <= set(self.names)):
            reading = [n for n in self.names if self.keys[n]]
            if len(reading) != 1:
                raise ConditioningError(
                    f"this model has conditioners {format_choices(self.names)}: pass "
                    f"conditioning as a mapping {{name: value}} of those names")
            conditioning = {reading[0]: conditioning}
        out = {}
        for name, value in conditioning.items():
            if value is None or not self.keys[name]:
                continue
            values = list(value) if isinstance(value, list | tuple) else [value] * num_samples
            if len(values) != num_samples:
                raise ConditioningError(f"conditioner '{name}': got {len(values)} values for "
                                        f"{num_samples} samples")
            try:
                parsed = [self.modules[name].parse_value(v) for v in values]
            except (KeyError, ValueError, IndexError, TypeError) as exc:
                raise ConditioningError(f"conditioner '{name}': {exc}") from exc
            out[name] = _batched(parsed)
        return out


def _batched(values: list[Any]) -> Any:
    """Per-example values -> batch values: ints -> int64 ``(batch,)``, numbers -> float32
    ``(batch,)``, mappings -> a mapping of batched values, anything else a list."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return torch.tensor(values, dtype=torch.long)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return torch.tensor(values, dtype=torch.float32)
    if all(isinstance(v, Mapping) for v in values):
        return {k: _batched([v[k] for v in values]) for k in values[0]}
    return list(values)


def _to(value: Any, device: torch.device | None) -> Any:
    return value.to(device) if device is not None and isinstance(value, Tensor) else value
