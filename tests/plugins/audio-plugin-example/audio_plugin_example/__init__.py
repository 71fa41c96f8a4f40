"""Example audio-core plugin. Importing this package does not import torch."""

__version__ = "0.1.0"
