"""The ``audio-plugin-template`` plugin for audio-core.

Importing this package does not import torch; ``hooks`` registers its components as
``"module:Class"`` strings that the registry imports on first use.
"""

__version__ = "0.1.0"
