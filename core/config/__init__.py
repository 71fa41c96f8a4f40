"""Run configs: attrs schemas validated by OmegaConf, loaded from YAML or presets."""

from audio_core.config.build import build_component, build_dataset, data_context
from audio_core.config.loader import (
    load_config,
    save_config,
    to_yaml,
)
from audio_core.config.resolve import check_component_refs
from audio_core.config.schema import (
    ComponentConfig,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    RunConfig,
    RunSection,
    TrainConfig,
    component_refs,
)

__all__ = [
    "ComponentConfig",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimizerConfig",
    "RunConfig",
    "RunSection",
    "TrainConfig",
    "build_component",
    "build_dataset",
    "check_component_refs",
    "component_refs",
    "data_context",
    "load_config",
    "save_config",
    "to_yaml",
]
