"""audio-core: a plugin-based framework for neural audio models.

Importing this package is cheap: it does not import torch. Heavy modules
(`audio_core.audio`, `audio_core.data`, models) are imported on first use.
"""

from __future__ import annotations

from audio_core.version import __version__

__all__ = ["__version__", "get_plugin_manager", "get_registry", "load"]


def get_plugin_manager():
    """The process-wide :class:`~audio_core.plugins.PluginManager`, loaded on first call."""
    from audio_core.plugins import get_plugin_manager as _get

    return _get()


def get_registry():
    """The process-wide component :class:`~audio_core.plugins.Registry`."""
    from audio_core.plugins import get_registry as _get

    return _get()


def load(path, **kwargs):
    """A ready model from an export folder or a run folder; see
    :func:`audio_core.models.loading.load`."""
    from audio_core.models.loading import load as _load

    return _load(path, **kwargs)
