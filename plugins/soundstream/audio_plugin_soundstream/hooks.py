"""Hook implementations of the ``soundstream`` plugin.

Entry point ``soundstream = "audio_plugin_soundstream.hooks"`` in group ``audio_core``.
Targets are ``"module:Class"`` strings, so importing this module (``audio-core plugins``)
imports neither torch nor model code.
"""

from __future__ import annotations

from pathlib import Path

from audio_core.plugins import hookimpl

PRESETS = Path(__file__).resolve().parent / "presets"


@hookimpl
def audio_core_register_models(registry):
    registry.register("encodec", "audio_plugin_soundstream.encodec_model:EncodecCodec",
                      description="RVQ codec with EnCodec's input handling (per-chunk "
                                  "loudness normalisation, overlapping chunks); what "
                                  "imported EnCodec models load as")


@hookimpl
def audio_core_register_importers(registry):
    registry.register("encodec_hf", "audio_plugin_soundstream.import_encodec:EncodecImporter",
                      description="transformers EncodecModel save_pretrained folder -> "
                                  "soundstream.encodec export")
    registry.register("dac_hf", "audio_plugin_soundstream.import_dac:DacImporter",
                      description="transformers DacModel save_pretrained folder -> "
                                  "core.autoencoder export (DAC encoder/decoder, factorised "
                                  "RVQ)")
    registry.register("mimi_hf", "audio_plugin_soundstream.import_mimi:MimiImporter",
                      description="transformers MimiModel save_pretrained folder -> "
                                  "core.autoencoder export (Mimi encoder/decoder, split RVQ)")


@hookimpl
def audio_core_register_exporters(registry):
    registry.register("encodec_hf", "audio_plugin_soundstream.export_encodec:EncodecExporter",
                      description="--format transformers: EnCodec-layout model (encodec "
                                  "encoder/decoder + core.rvq) -> EncodecModel folder")
    registry.register("dac_hf", "audio_plugin_soundstream.export_dac:DacExporter",
                      description="--format transformers: DAC-layout model (dac "
                                  "encoder/decoder + factorized_rvq) -> DacModel folder")
    registry.register("mimi_hf", "audio_plugin_soundstream.export_mimi:MimiExporter",
                      description="--format transformers: Mimi-layout model (mimi "
                                  "encoder/decoder + split_rvq) -> MimiModel folder")
    registry.register("onnx_streaming",
                      "audio_plugin_soundstream.onnx_streaming:StreamingOnnxExporter",
                      description="--format onnx-streaming: causal SEANet + RVQ codec -> "
                                  "step graphs with the streaming state as explicit "
                                  "inputs/outputs")
    registry.register("encodec_onnx_streaming",
                      "audio_plugin_soundstream.onnx_streaming_encodec:"
                      "EncodecStreamingOnnxExporter",
                      description="--format onnx-streaming: causal EnCodec-layout codec "
                                  "(imported 24 kHz EnCodec) -> step graphs with explicit "
                                  "state and a started flag (reflect padding of the start)")


@hookimpl
def audio_core_register_encoders(registry):
    registry.register("encoder", "audio_plugin_soundstream.seanet:SEANetEncoder",
                      description="Causal SEANet conv encoder (optional Haar front end, LSTM, "
                                  "energy transformer): (batch, channels, time) -> "
                                  "(batch, dim, frames)")
    registry.register("spectral_encoder", "audio_plugin_soundstream.spectral:SpectralEncoder",
                      description="Log-magnitude STFT + ConvNeXt blocks at the frame rate "
                                  "(not causal): (batch, channels, time) -> "
                                  "(batch, dim, frames)")
    registry.register("encodec_encoder", "audio_plugin_soundstream.encodec:EncodecEncoder",
                      description="SEANet encoder in EnCodec's layout (reflect padding, "
                                  "causal or centred, conv shortcuts, weight or group norm; "
                                  "offline): (batch, channels, time) -> (batch, dim, frames)")
    registry.register("dac_encoder", "audio_plugin_soundstream.dac:DacEncoder",
                      description="DAC encoder (Snake activations, centred convs): "
                                  "(batch, channels, time) -> (batch, dim, frames)")
    registry.register("mimi_encoder", "audio_plugin_soundstream.mimi:MimiEncoder",
                      description="Mimi encoder: SEANet (EnCodec layout, plain convs), causal "
                                  "sliding-window transformer, strided conv to the frame "
                                  "rate: (batch, channels, time) -> (batch, dim, frames)")


@hookimpl
def audio_core_register_decoders(registry):
    registry.register("decoder", "audio_plugin_soundstream.seanet:SEANetDecoder",
                      description="Causal SEANet conv decoder: (batch, dim, frames) -> "
                                  "(batch, channels, frames * hop)")
    registry.register("spectral_decoder", "audio_plugin_soundstream.spectral:SpectralDecoder",
                      description="ConvNeXt blocks -> STFT magnitude + phase -> inverse STFT "
                                  "(Vocos head, not causal): (batch, dim, frames) -> "
                                  "(batch, channels, frames * hop)")
    registry.register("encodec_decoder", "audio_plugin_soundstream.encodec:EncodecDecoder",
                      description="SEANet decoder in EnCodec's layout (offline): "
                                  "(batch, dim, frames) -> (batch, channels, frames * hop)")
    registry.register("dac_decoder", "audio_plugin_soundstream.dac:DacDecoder",
                      description="DAC decoder (Snake activations, tanh output): "
                                  "(batch, dim, frames) -> (batch, channels, ~frames * hop)")
    registry.register("mimi_decoder", "audio_plugin_soundstream.mimi:MimiDecoder",
                      description="Mimi decoder: grouped transposed conv, causal "
                                  "sliding-window transformer, SEANet decoder: "
                                  "(batch, dim, frames) -> (batch, channels, frames * hop)")


@hookimpl
def audio_core_register_quantizers(registry):
    registry.register("factorized_rvq",
                      "audio_plugin_soundstream.factorized_vq:FactorizedResidualVQ",
                      description="Residual VQ with factorised (low-dim projection) and "
                                  "L2-normalised (cosine) codebook lookup, DAC's quantizer")
    registry.register("split_rvq", "audio_plugin_soundstream.mimi_quantizer:SplitResidualVQ",
                      description="Mimi's split residual VQ: semantic + acoustic RVQ groups "
                                  "on the same latent, each with 1x1 in/out projections")


@hookimpl
def audio_core_register_losses(registry):
    registry.register("aux", "audio_plugin_soundstream.stage_loss:DecoderStageLoss",
                      description="Decoder upsampling stages' channel means vs the "
                                  "downsampled target (needs decoder aux_outputs)")


@hookimpl
def audio_core_register_presets(registry):
    registry.register_folder(PRESETS)
