"""Hook implementations of the ``example`` plugin (entry point ``example`` in group
``audio_core``): an encoder, a new component kind (``augmentation``) with one component,
and a sub-command (``audio-core frames``).

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


@hookimpl
def audio_core_register_kinds(kinds):
    # A kind audio-core does not have: its components register through the hook named
    # here (any plugin may implement it) and are checked against the contract when built.
    kinds.register("augmentation", contract="audio_plugin_example.contracts:Augmentation",
                   hook="audio_core_register_augmentations",
                   description="waveform -> waveform, applied to training crops")


@hookimpl
def audio_core_register_augmentations(registry):
    registry.register("gain", "audio_plugin_example.augment:RandomGain",
                      description="random gain in decibels")


@hookimpl
def audio_core_register_commands(registry):
    registry.register("frames", "audio_plugin_example.cli:FramesCommand",
                      description="latent frames example.frame_encoder makes for N seconds")
