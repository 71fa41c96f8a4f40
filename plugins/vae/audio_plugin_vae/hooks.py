"""Hook implementations of the ``vae`` plugin.

Entry point ``vae = "audio_plugin_vae.hooks"`` in group ``audio_core``.

This is the distribution skeleton: no hooks are implemented yet. The issue that adds the
vae model family fills this module in; it will register (names get the ``vae.`` prefix):

- ``vae.*`` encoder and decoder
- ``vae.gaussian`` bottleneck (KL loss)
- presets

Register each target as a ``"audio_plugin_vae.<module>:<Class>"`` string so that loading
this module stays free of torch. See ``docs/plugin-authors.md``.
"""

from audio_core.plugins import hookimpl  # noqa: F401  (used once hooks are added)
