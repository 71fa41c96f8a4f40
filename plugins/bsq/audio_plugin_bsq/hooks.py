"""Hook implementations of the ``bsq`` plugin.

Entry point ``bsq = "audio_plugin_bsq.hooks"`` in group ``audio_core``.

This is the distribution skeleton: no hooks are implemented yet. The issue that adds the
bsq model family fills this module in; it will register (names get the ``bsq.`` prefix):

- ``bsq.transformer`` encoder and decoder
- ``bsq.bsq`` quantizer (binary spherical quantization)
- presets for small/base configs

Register each target as a ``"audio_plugin_bsq.<module>:<Class>"`` string so that loading
this module stays free of torch. See ``docs/plugin-authors.md``.
"""

from audio_core.plugins import hookimpl  # noqa: F401  (used once hooks are added)
