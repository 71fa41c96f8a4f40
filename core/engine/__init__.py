"""Training engine on DeepSpeed: engines per optimizer role, checkpoints, EMA, export.

``Engine`` (one per optimizer role), ``build_ds_config`` (per-engine DeepSpeed dicts from
a run config) and the process-group helpers in :mod:`audio_core.distributed`.
Attributes are imported lazily so that importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy attributes are, for type checkers
    from audio_core.distributed import init_distributed, teardown
    from audio_core.engine.ds_config import build_ds_config, lr_lambda
    from audio_core.engine.engine import Engine

_EXPORTS = {
    "Engine": "audio_core.engine.engine",
    "build_ds_config": "audio_core.engine.ds_config",
    "lr_lambda": "audio_core.engine.ds_config",
    "init_distributed": "audio_core.distributed",
    "teardown": "audio_core.distributed",
}

__all__ = ["Engine", "build_ds_config", "init_distributed", "lr_lambda", "teardown"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'audio_core.engine' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
