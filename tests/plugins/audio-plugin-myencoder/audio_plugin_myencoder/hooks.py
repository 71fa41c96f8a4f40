"""The one hook of the ``myencoder`` plugin (entry point ``myencoder`` in group
``audio_core``): it registers ``myencoder.mel_projection`` as an encoder. The target is a
``"module:Class"`` string, so ``audio-core plugins`` imports neither torch nor the RAE."""

from audio_core.plugins import hookimpl


@hookimpl
def audio_core_register_encoders(registry):
    registry.register("mel_projection", "audio_plugin_myencoder.encoder:MelProjectionEncoder",
                      description="Frozen log-mel + random projection (hidden_size per "
                                  "patch_size samples), for RAE decoders")
