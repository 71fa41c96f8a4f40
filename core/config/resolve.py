"""Resolve a run config against the component registry: the task and model classes it
names, and checks that every component exists, takes its params, and fills exactly the slots
the model and task use (what :func:`~audio_core.config.loader.load_config` runs).

The model class is ``model.type`` when set, else the one the task trains
(``Task.model_type``; the task class is looked up, never constructed).
"""

from __future__ import annotations

from typing import Any

from audio_core.config.schema import COMPONENT_SLOTS, RunConfig, component_refs
from audio_core.errors import ConfigError, format_choices

DEFAULT_TASK = "core.autoencoder"


def registry_or_default(registry: Any) -> Any:
    """``registry``, or the process-wide one when ``None``."""
    if registry is not None:
        return registry
    from audio_core.plugins import get_registry

    return get_registry()


def task_class(cfg: RunConfig, registry: Any = None) -> type:
    """The class of ``cfg.task`` (default ``core.autoencoder``), imported, not built."""
    name = cfg.task.name if cfg.task is not None else DEFAULT_TASK
    return registry_or_default(registry).get("task", name, path="task.name").resolve()


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
    registry = registry_or_default(registry)
    return registry.get("model", model_type(cfg, registry), path=where).resolve()


def check_model_params(cfg: RunConfig, registry: Any = None) -> None:
    """``model.params`` keys are parameters of the model's ``from_config``."""
    from audio_core.plugins.registry import check_params

    check_params(model_class(cfg, registry).from_config, cfg.model.params,
                 f"model '{model_type(cfg, registry)}'", "model")


def check_component_refs(cfg: RunConfig, registry: Any, *, check_params: bool = False) -> None:
    """Every component exists in ``registry`` (and, optionally, accepts its params)."""
    from audio_core.plugins.registry import check_params as _check_params

    if cfg.model.type is not None:
        registry.get("model", cfg.model.type, path="model.type")
    for where, kind, ref in component_refs(cfg):
        spec = registry.get(kind, ref.name, path=f"{where}.name")
        if check_params:
            _check_params(spec.resolve(), ref.params, f"{kind} '{ref.name}'", where)
    if check_params:
        check_model_params(cfg, registry)
        check_slots(cfg, registry)


def _is_set(value: Any) -> bool:
    return bool(value) if isinstance(value, list | dict) else value is not None


def check_slots(cfg: RunConfig, registry: Any = None) -> None:
    """:class:`ConfigError` when a required slot is empty or a set one is used by neither the
    model class nor the task (a component that would silently be ignored)."""
    registry = registry_or_default(registry)
    model = model_class(cfg, registry)
    task = task_class(cfg, registry)
    slots: dict[str, bool] = {**task.slots, **model.slots}
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
