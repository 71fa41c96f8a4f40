"""The ``audio-plugin-rae`` plugin for audio-core.

Representation autoencoder: a frozen pretrained encoder with a trained decoder.

Importing this package does not import torch; model code lives in submodules that the
registry imports on first use.
"""

__version__ = "0.1.0"
