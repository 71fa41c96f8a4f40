"""Build components named in a :class:`RunConfig` through the registry."""

from __future__ import annotations

from typing import Any

from audio_core.config.schema import ComponentConfig, RunConfig


def _registry(registry: Any) -> Any:
    if registry is not None:
        return registry
    from audio_core.plugins import get_registry

    return get_registry()


def build_component(ref: ComponentConfig, kind: str, path: str, *, registry: Any = None,
                    context: dict[str, Any] | None = None) -> Any:
    """Build ``ref`` (``{name, params}``) as a component of ``kind``; errors name ``path``."""
    return _registry(registry).build(kind, ref.name, ref.params, path=path, context=context)


def data_context(cfg: RunConfig) -> dict[str, Any]:
    """What every dataset factory receives besides its own params."""
    return {"sample_rate": cfg.data.sample_rate, "channels": cfg.data.channels,
            "segment_seconds": cfg.data.segment_seconds, "seed": cfg.run.seed}


def build_dataset(cfg: RunConfig, split: str = "train", *, registry: Any = None) -> Any:
    """The ``data.train`` or ``data.val`` dataset of ``cfg``."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got '{split}'")
    ref = getattr(cfg.data, split)
    if ref is None:
        raise ValueError(f"data.{split} is not set in this config")
    return build_component(ref, "dataset", f"data.{split}", registry=registry,
                           context=data_context(cfg))
