"""Load, merge, validate and save run configs.

``load_config(source, overrides)`` reads a YAML file or a registered preset, applies
``extends:`` inheritance and ``key=value`` overrides (:mod:`audio_core.config.merge`:
renaming a component replaces its params), rejects unknown keys with their full path,
converts types against :class:`RunConfig`, resolves ``${...}`` interpolation, checks value
ranges and (optionally) that every component exists in the registry.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from audio_core.config.merge import attrs_class, merge_config
from audio_core.config.schema import RunConfig, walk
from audio_core.errors import ConfigError, did_you_mean, format_choices, yaml_problem

EXTENDS_KEY = "extends"


def load_config(source: str | Path | Mapping[str, Any], overrides: Sequence[str] = (), *,
                registry: Any = None, check_components: bool = True,
                check_params: bool = False) -> RunConfig:
    """A validated :class:`RunConfig` from a YAML path, a preset name or a mapping.

    ``check_components`` checks every component name against the registry (cheap);
    ``check_params`` also imports each factory and checks its ``params`` keys.
    """
    if registry is None and (check_components or not isinstance(source, Mapping)):
        from audio_core.plugins import get_registry

        registry = get_registry()
    data = dict(source) if isinstance(source, Mapping) else read_config_file(
        resolve_source(source, registry))
    layered = merge_config(data, OmegaConf.to_container(parse_overrides(overrides),
                                                        resolve=False), RunConfig)
    layered = merge_config({}, layered)  # drops leftover _replace_ markers
    check_keys(layered, RunConfig, "")
    user = OmegaConf.create(layered)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(RunConfig), user)
        OmegaConf.resolve(merged)
        cfg = typing.cast(RunConfig, OmegaConf.to_object(merged))
    except OmegaConfBaseException as exc:
        raise _config_error(exc) from exc
    check_values(cfg)
    if check_components:
        from audio_core.config.resolve import check_component_refs

        check_component_refs(cfg, registry, check_params=check_params)
    return cfg


def resolve_source(source: str | Path, registry: Any) -> Path:
    """The YAML file for a path or a preset name (``core.demo`` or just ``demo``)."""
    path = Path(source)
    if path.is_file():
        return path
    name = str(source)
    presets = {spec.name: spec for spec in registry.specs("preset")} if registry else {}
    matches = [n for n in presets if n == name or n.split(".", 1)[-1] == name]
    if len(matches) == 1:
        return Path(presets[matches[0]].resolve())
    if len(matches) > 1:
        raise ConfigError(f"preset name '{name}' is ambiguous: {format_choices(matches)}")
    if path.suffix in {".yaml", ".yml"} or path.parent != Path("."):
        raise ConfigError(f"config file '{path}' does not exist")
    short = {n.split(".", 1)[-1]: n for n in presets}
    hint = did_you_mean(name, presets) or did_you_mean(name, short)
    raise ConfigError(f"'{name}' is neither a config file nor a preset{hint} "
                      f"(presets: {format_choices(presets)})")


#: What a config file (or the file an ``extends:`` names) may be called.
CONFIG_SUFFIXES = frozenset({".yaml", ".yml", ".json"})


def read_config_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML mapping in ``path``, merged over whatever its ``extends:`` names."""
    path = path.resolve()
    if path.suffix.lower() not in CONFIG_SUFFIXES:  # never parse (or quote) other files
        raise ConfigError(f"'{path}' is not a config file: audio-core reads "
                          f"{', '.join(sorted(CONFIG_SUFFIXES))} files or preset names "
                          f"(in a config, `extends:` names one of those)")
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"config files extend each other in a cycle: {chain}")
    try:
        node = OmegaConf.load(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file '{path}' does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML at {yaml_problem(exc)}"
                          ) from exc
    if not isinstance(node, DictConfig):
        raise ConfigError(f"config file '{path}' must hold a mapping at the top level")
    data = typing.cast(dict[str, Any], OmegaConf.to_container(node, resolve=False))
    base = data.pop(EXTENDS_KEY, None)
    if base is None:
        return data
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.is_file():
        from audio_core.plugins import get_registry

        base_path = resolve_source(str(base), get_registry())
    return merge_config(read_config_file(base_path, (*_seen, path)), data, RunConfig)


def parse_overrides(overrides: Sequence[str]) -> DictConfig:
    """``["train.max_steps=10", ...]`` as a config; a malformed item names itself."""
    for item in overrides:
        key, eq, _ = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"override '{item}' must look like key=value, "
                              f"e.g. train.max_steps=100")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"bad override: {exc}") from exc


def check_keys(data: Any, cls: type, path: str) -> None:
    """Raise on any key of ``data`` that ``cls`` (an attrs class) does not declare."""
    if not isinstance(data, Mapping):
        return
    fields = {f.name: f for f in attrs.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            hint = did_you_mean(str(key), fields).replace("'", f"'{path}." if path else "'", 1)
            raise ConfigError(f"unknown config key '{where}'{hint} "
                              f"(valid keys here: {format_choices(fields)})", where)
        target = attrs_class(hints[key])
        if target is None:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                check_keys(item, target, f"{where}[{i}]")
        elif typing.get_origin(hints[key]) is dict and isinstance(value, Mapping):
            for name, item in value.items():  # NAME -> component (model.conditioners)
                check_keys(item, target, f"{where}.{name}")
        else:
            check_keys(value, target, where)


def check_values(cfg: RunConfig) -> None:
    """Check field metadata across the config: ``choices``, ``minimum``/``maximum`` (and
    that such numbers are finite), ``length`` of lists and ``items`` (the same checks, plus
    ``below``: strictly less than, for every item of a list); and that every loss weight is
    a number or a schedule (:func:`audio_core.schedules.as_schedule`)."""
    from audio_core.schedules import as_schedule

    for i, loss in enumerate(cfg.model.losses):
        as_schedule(loss.weight, f"model.losses[{i}].weight")
    for where, field, value in walk(cfg):
        check_value(value, field.metadata, where)
        if isinstance(value, list):
            length = field.metadata.get("length")
            if length is not None and len(value) != length:
                raise ConfigError(f"invalid value {value} at {where}: must have exactly "
                                  f"{length} items, got {len(value)}", where)
            items = field.metadata.get("items")
            if items:
                for i, item in enumerate(value):
                    check_value(item, items, f"{where}[{i}]")


def check_value(value: Any, rules: Mapping[str, Any], where: str) -> None:
    """One value against ``choices``/``minimum``/``maximum``/``below`` rules (a callable
    ``choices`` is called for the current list)."""
    choices: Any = rules.get("choices")
    if callable(choices):
        choices = choices()
    if choices and value not in choices:
        hint = did_you_mean(str(value), [str(c) for c in choices])
        raise ConfigError(f"invalid value '{value}' at {where}{hint} "
                          f"(valid: {format_choices(choices)})", where)
    bounds = [rules.get(k) for k in ("minimum", "maximum", "below")]
    if all(b is None for b in bounds) or isinstance(value, bool) or value is None:
        return
    minimum, maximum, below = bounds
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"invalid value {value!r} at {where}: must be a finite number", where)
    if minimum is not None and value < minimum:
        raise ConfigError(f"invalid value {value} at {where}: must be >= {minimum}", where)
    if maximum is not None and value > maximum:
        raise ConfigError(f"invalid value {value} at {where}: must be <= {maximum}", where)
    if below is not None and value >= below:
        raise ConfigError(f"invalid value {value} at {where}: must be < {below}", where)


def to_yaml(cfg: RunConfig) -> str:
    """The fully resolved config as YAML (what every run saves beside its outputs)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def save_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write the resolved config to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(to_yaml(cfg), encoding="utf-8")
    tmp.replace(path)
    return path


def _config_error(exc: OmegaConfBaseException) -> ConfigError:
    key = getattr(exc, "full_key", None) or None
    message = str(exc).split("\n", 1)[0]
    return ConfigError(f"{message} (at {key})" if key else message, key)
