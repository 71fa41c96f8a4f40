"""The ``audio-plugin-soundstream`` plugin for audio-core.

SoundStream neural audio codec: residual vector quantization with adversarial training.

Importing this package does not import torch; model code lives in submodules that the
registry imports on first use.
"""

__version__ = "0.1.0"
