"""Tasks: how one training step is computed. Registered as components of kind ``task``."""

from audio_core.tasks.base import Task

__all__ = ["Task"]
