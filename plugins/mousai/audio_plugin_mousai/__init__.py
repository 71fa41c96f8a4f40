"""The ``audio-plugin-mousai`` plugin for audio-core.

Moûsai latent diffusion for music generation.

Importing this package does not import torch; model code lives in submodules that the
registry imports on first use.
"""

__version__ = "0.1.0"
