"""Hook implementations of the ``template`` plugin.

Entry point ``template = "audio_plugin_template.hooks"`` in group ``audio_core``. One
function per component kind; each receives a registry bound to that kind and to this
plugin's namespace, so ``"encoder"`` below becomes ``template.encoder``.

Keep this module light: register targets as ``"module:Class"`` strings, never import
torch or model code here (``audio-core plugins`` imports this module just to list it).
"""

from audio_core.plugins import hookimpl


@hookimpl
def audio_core_register_encoders(registry):
    registry.register(
        "encoder",
        "audio_plugin_template.encoder:ConvEncoder",
        description="Strided-convolution encoder: (batch, channels, time) -> "
        "(batch, dim, frames)",
    )


# Other kinds, same pattern:
#   audio_core_register_quantizers, audio_core_register_decoders,
#   audio_core_register_discriminators, audio_core_register_losses,
#   audio_core_register_samplers, audio_core_register_datasets,
#   audio_core_register_tasks, audio_core_register_presets (a YAML path)
