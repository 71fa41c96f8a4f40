"""Hook implementations of the ``rae`` plugin.

Entry point ``rae = "audio_plugin_rae.hooks"`` in group ``audio_core``. Targets are
``"module:Class"`` strings, so importing this module (``audio-core plugins``) imports
neither torch nor transformers.
"""

from __future__ import annotations

from pathlib import Path

from audio_core.plugins import hookimpl

PRESETS = Path(__file__).resolve().parent / "presets"


@hookimpl
def audio_core_register_models(registry):
    registry.register("autoencoder", "audio_plugin_rae.model:RAEAutoencoder",
                      description="RAE stage 1: frozen representation encoder -> normalised "
                                  "latent -> ViT decoder (waveform, or log-mel + vocoder)")


@hookimpl
def audio_core_register_encoders(registry):
    registry.register("wav2vec2", "audio_plugin_rae.speech:Wav2Vec2Encoder",
                      description="Frozen wav2vec 2.0 (transformers): 16 kHz waveform -> one "
                                  "layer's hidden states, parameter-free layer norm")
    registry.register("hubert", "audio_plugin_rae.speech:HubertEncoder",
                      description="Frozen HuBERT (transformers): 16 kHz waveform -> one "
                                  "layer's hidden states, parameter-free layer norm")
    registry.register("spectrogram", "audio_plugin_rae.spectrogram:SpectrogramEncoder",
                      description="Frozen DINOv2 on a dB mel spectrogram image -> patch "
                                  "tokens (time-major), CLS/registers dropped")


@hookimpl
def audio_core_register_decoders(registry):
    registry.register("vit", "audio_plugin_rae.decoder:ViTDecoder",
                      description="ViT decoder over encoder tokens -> waveform patches or "
                                  "log-mel patches (with model.vocoder)")


@hookimpl
def audio_core_register_vocoders(registry):
    registry.register("griffin_lim", "audio_plugin_rae.vocoder:GriffinLimVocoder",
                      description="Log-mel -> waveform by NNLS + Griffin-Lim (no weights)")


@hookimpl
def audio_core_register_denoisers(registry):
    registry.register("dit", "audio_plugin_rae.dit:DiT",
                      description="Diffusion transformer with adaLN-Zero; optional wide "
                                  "DDT head (DiT^DH)")


@hookimpl
def audio_core_register_losses(registry):
    registry.register("mel_l1", "audio_plugin_rae.losses:MelPatchLoss",
                      description="L1 of a spectrogram-output rae.vit decoder's log-mel "
                                  "against the input's")


@hookimpl
def audio_core_register_presets(registry):
    registry.register_folder(PRESETS)
