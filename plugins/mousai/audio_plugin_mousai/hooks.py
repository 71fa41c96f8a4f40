"""Hook implementations of the ``mousai`` plugin.

Entry point ``mousai = "audio_plugin_mousai.hooks"`` in group ``audio_core``.

This is the distribution skeleton: no hooks are implemented yet. The issue that adds the
mousai model family fills this module in; it will register (names get the ``mousai.``
prefix):

- ``mousai.*`` diffusion autoencoder components
- ``mousai.*`` samplers
- the latent-diffusion task wiring and presets

Register each target as a ``"audio_plugin_mousai.<module>:<Class>"`` string so that
loading this module stays free of torch. See ``docs/plugin-authors.md``.
"""

from audio_core.plugins import hookimpl  # noqa: F401  (used once hooks are added)
