"""Plugin system: hookspecs, the component registry and the plugin manager."""

from audio_core.plugins.hookspecs import KINDS, hookimpl, hookspec
from audio_core.plugins.manager import (
    ENTRY_POINT_GROUP,
    ENV_ALLOW,
    ENV_BLOCK,
    PluginInfo,
    PluginManager,
    get_plugin_manager,
    get_registry,
    reset_plugin_manager,
)
from audio_core.plugins.registry import ComponentSpec, KindRegistry, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_ALLOW",
    "ENV_BLOCK",
    "KINDS",
    "ComponentSpec",
    "KindRegistry",
    "PluginInfo",
    "PluginManager",
    "Registry",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "hookspec",
    "reset_plugin_manager",
]
