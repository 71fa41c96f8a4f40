"""The ``audio-plugin-bsq`` plugin for audio-core.

BSQ audio tokenizer: a transformer autoencoder with binary spherical quantization.

Importing this package does not import torch; model code lives in submodules that the
registry imports on first use.
"""

__version__ = "0.1.0"
