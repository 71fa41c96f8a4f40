"""Hook implementations of the ``rae`` plugin.

Entry point ``rae = "audio_plugin_rae.hooks"`` in group ``audio_core``.

This is the distribution skeleton: no hooks are implemented yet. The issue that adds the
rae model family fills this module in; it will register (names get the ``rae.`` prefix):

- ``rae.*`` frozen encoders wrapping pretrained representation models
- ``rae.*`` decoder
- the frozen-encoder task wiring

Register each target as a ``"audio_plugin_rae.<module>:<Class>"`` string so that loading
this module stays free of torch. See ``docs/plugin-authors.md``.
"""

from audio_core.plugins import hookimpl  # noqa: F401  (used once hooks are added)
