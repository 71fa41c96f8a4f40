"""Hook implementations of the ``example`` plugin (entry point ``example`` in group
``audio_core``).

The target is a ``"module:Class"`` string, so loading this module (which is what
``audio-core plugins`` does) imports neither torch nor the encoder module.
"""

from audio_core.plugins import hookimpl


@hookimpl
def audio_core_register_encoders(registry):
    # Registered as "example.frame_encoder": the registry adds the plugin's namespace.
    registry.register(
        "frame_encoder",
        "audio_plugin_example.encoder:FrameEncoder",
        description="Strided-convolution frame encoder: (batch, channels, time) -> "
        "(batch, dim, frames)",
    )
