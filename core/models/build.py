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

from audio_core.config.schema import COMPONENT_SLOTS, ModelConfig, RunConfig
from audio_core.errors import ConfigError, format_choices

DEFAULT_TASK = "core.autoencoder"


def _registry(registry: Any) -> Any:
    if registry is not None:
        return registry
    from audio_core import get_registry

    return get_registry()


def task_class(cfg: RunConfig, registry: Any = None) -> type:
    """The class of ``cfg.task`` (default ``core.autoencoder``), imported, not built."""
    name = cfg.task.name if cfg.task is not None else DEFAULT_TASK
    return _registry(registry).get("task", name, path="task.name").resolve()


def model_type(cfg: RunConfig, registry: Any = None) -> str:
    """``model.type``, or the model the configured task trains."""
    if cfg.model.type is not None:
        return cfg.model.type
    kind = getattr(task_class(cfg, registry), "model_type", None)
    if kind is None:
        raise ConfigError("set model.type: the task names no model it trains", "model.type")
    return kind


def model_class(cfg: RunConfig, registry: Any = None) -> type:
    """The model class a run builds (see :func:`model_type`)."""
    where = "model.type" if cfg.model.type is not None else "task.name"
    return _registry(registry).get("model", model_type(cfg, registry), path=where).resolve()


def check_model_params(cfg: RunConfig, registry: Any = None) -> None:
    """``model.params`` keys are parameters of the model's ``from_config``."""
    from audio_core.plugins.registry import check_params

    check_params(model_class(cfg, registry).from_config, cfg.model.params,
                 f"model '{model_type(cfg, registry)}'", "model")


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


def _is_set(value: Any) -> bool:
    return bool(value) if isinstance(value, list | dict) else value is not None


def check_slots(cfg: RunConfig, registry: Any = None) -> None:
    """:class:`ConfigError` when a required slot is empty or a set one is used by neither the
    model class nor the task (a component that would silently be ignored)."""
    registry = _registry(registry)
    model = model_class(cfg, registry)
    task = task_class(cfg, registry)
    slots: dict[str, bool] = {**getattr(task, "slots", {}), **model.slots}
    owner = f"model {model_type(cfg, registry)} with task " \
            f"{cfg.task.name if cfg.task is not None else DEFAULT_TASK}"
    for slot, required in slots.items():
        if required and not _is_set(getattr(cfg.model, slot)):
            raise ConfigError(f"model.{slot} is required by {owner}", f"model.{slot}")
    for slot in COMPONENT_SLOTS:
        if _is_set(getattr(cfg.model, slot)) and slot not in slots:
            raise ConfigError(f"model.{slot} is set but {owner} does not use it (it uses "
                              f"{format_choices(slots) or 'no components'}); remove it",
                              f"model.{slot}")
