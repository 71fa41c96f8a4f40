"""Build a model from a run config, independently of any training task.

The model class is ``model.type`` when set, else the one the task trains
(``Task.model_type``; the task class is looked up, never constructed). The class is a
registered component of kind ``model`` with ``from_config(cfg, registry, **model.params)``.
Each class declares the ``model.<slot>`` components it builds (``slots``), and each task
the training parts it adds (``Task.slots``): :func:`check_slots` makes a config name exactly
what a run will build.
"""

from __future__ import annotations

from typing import Any

import attrs

from audio_core.config import resolve as _resolve
from audio_core.config.schema import ModelConfig, RunConfig
from audio_core.errors import ConfigError

DEFAULT_TASK = _resolve.DEFAULT_TASK
_registry = _resolve.registry_or_default
task_class, model_type, model_class = _resolve.task_class, _resolve.model_type, _resolve.model_class
check_model_params, check_slots = _resolve.check_model_params, _resolve.check_slots


def build_model(cfg: RunConfig, registry: Any = None, *, loading: bool = False) -> Any:
    """The model of ``cfg``, freshly initialised; never any loss or discriminator.

    ``loading=True`` says weights are loaded right after: files whose content the weights
    carry (latent statistics) are not read.
    """
    registry = _registry(registry)
    name = model_type(cfg, registry)
    context = {"cfg": cfg, "registry": registry, "loading": loading}
    return registry.build("model", name, cfg.model.params, path="model", context=context,
                          constructor="from_config")


def build_slot(cfg: RunConfig, registry: Any, slot: str, **context: Any) -> Any:
    """Component ``model.<slot>`` of ``cfg`` (``None`` when unset), built with ``context``
    (values the framework supplies: sample rate, channels, dim ...)."""
    ref = getattr(cfg.model, slot)
    if ref is None:
        return None
    kind = attrs.fields_dict(ModelConfig)[slot].metadata["kind"]
    return _registry(registry).build(kind, ref.name, ref.params, path=f"model.{slot}",
                                     context=context)


def build_conditioners(cfg: RunConfig, registry: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``model.conditioners`` built: (NAME -> conditioner, NAME -> the batch keys it reads,
    its ``key`` or the component's ``input_key``); both empty when unset. Setting it and
    ``model.conditioner`` together is a :class:`ConfigError`."""
    from audio_core.models.conditioning import batch_keys, check_name

    entries = cfg.model.conditioners or {}
    if entries and cfg.model.conditioner is not None:
        raise ConfigError("set model.conditioner (one) or model.conditioners (by name), not "
                          "both", "model.conditioner")
    named, keys = {}, {}
    for name, ref in entries.items():
        where = f"model.conditioners.{name}"
        check_name(name)
        named[name] = _registry(registry).build("conditioner", ref.name, ref.params,
                                                path=where)
        keys[name] = batch_keys(named[name], ref.key, f"{where}.key")
    return named, keys
