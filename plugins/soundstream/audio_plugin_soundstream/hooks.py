"""Hook implementations of the ``soundstream`` plugin.

Entry point ``soundstream = "audio_plugin_soundstream.hooks"`` in group ``audio_core``.

This is the distribution skeleton: no hooks are implemented yet. The issue that adds the
soundstream model family fills this module in; it will register (names get the
``soundstream.`` prefix):

- ``soundstream.seanet`` encoder and decoder
- ``soundstream.rvq`` quantizer
- ``soundstream.*`` discriminators and losses
- presets

Register each target as a ``"audio_plugin_soundstream.<module>:<Class>"`` string so that
loading this module stays free of torch. See ``docs/plugin-authors.md``.
"""

from audio_core.plugins import hookimpl  # noqa: F401  (used once hooks are added)
