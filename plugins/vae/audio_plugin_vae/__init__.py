"""The ``audio-plugin-vae`` plugin for audio-core.

Variational audio autoencoder with continuous latents.

Importing this package does not import torch; model code lives in submodules that the
registry imports on first use.
"""

__version__ = "0.1.0"
