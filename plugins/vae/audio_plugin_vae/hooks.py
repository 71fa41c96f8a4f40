"""Hook implementations of the ``vae`` plugin.

Entry point ``vae = "audio_plugin_vae.hooks"`` in group ``audio_core``. Targets are
``"module:Class"`` strings, so importing this module (``audio-core plugins``) imports
neither torch nor model code.
"""

from __future__ import annotations

from pathlib import Path

from audio_core.plugins import hookimpl

PRESETS = Path(__file__).resolve().parent / "presets"


@hookimpl
def audio_core_register_models(registry):
    registry.register("vae", "audio_plugin_vae.model:VariationalAutoencoder",
                      description="Variational autoencoder: normalised continuous latents with "
                                  "stored per-channel statistics, interpolation")


@hookimpl
def audio_core_register_encoders(registry):
    registry.register("encoder", "audio_plugin_vae.seanet:VAEEncoder",
                      description="SEANet-style conv encoder (ELU or Snake): (batch, channels, "
                                  "time) -> posterior mean and scale (batch, 2 * latent_dim, "
                                  "frames)")


@hookimpl
def audio_core_register_decoders(registry):
    registry.register("decoder", "audio_plugin_vae.seanet:VAEDecoder",
                      description="SEANet-style transposed-conv decoder: (batch, latent_dim, "
                                  "frames) -> (batch, channels, frames * hop)")


@hookimpl
def audio_core_register_quantizers(registry):
    registry.register("gaussian", "audio_plugin_vae.bottleneck:GaussianBottleneck",
                      description="Gaussian posterior with a scheduled KL weight, free bits, "
                                  "per-channel KL metrics and a collapse warning")


@hookimpl
def audio_core_register_losses(registry):
    registry.register("dual_channel", "audio_plugin_vae.losses:DualChannelLoss",
                      description="Stereo loss on mid/side plus left/right (weighted), "
                                  "around any reconstruction loss")


@hookimpl
def audio_core_register_presets(registry):
    registry.register_folder(PRESETS)
