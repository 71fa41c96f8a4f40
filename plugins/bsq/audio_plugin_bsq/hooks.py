"""Hook implementations of the ``bsq`` plugin.

Entry point ``bsq = "audio_plugin_bsq.hooks"`` in group ``audio_core``. Targets are
``"module:Class"`` strings so that loading this module never imports torch.
"""

from pathlib import Path

from audio_core.plugins import hookimpl

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


@hookimpl
def audio_core_register_models(registry):
    registry.register("tokenizer", "audio_plugin_bsq.model:BSQTokenizer",
                      description="BSQ spectrogram tokenizer: waveform -> dB log-mel -> tokens "
                                  "-> mel -> vocoder (a fixed-bitrate codec)")


@hookimpl
def audio_core_register_encoders(registry):
    registry.register("transformer", "audio_plugin_bsq.encoder:SpectrogramEncoder",
                      description="Spectrogram transformer: dB log-mel patches -> tokens "
                                  "(batch, width, tokens)")


@hookimpl
def audio_core_register_quantizers(registry):
    registry.register("bsq", "audio_plugin_bsq.quantizer:BinarySphericalQuantizer",
                      description="Binary spherical quantization with factorised entropy "
                                  "regularisation")


@hookimpl
def audio_core_register_decoders(registry):
    registry.register("transformer", "audio_plugin_bsq.decoder:SpectrogramDecoder",
                      description="Spectrogram transformer: tokens -> dB log-mel "
                                  "(mirrors bsq.transformer encoder)")


@hookimpl
def audio_core_register_vocoders(registry):
    registry.register("griffin_lim", "audio_plugin_bsq.vocoder:GriffinLimVocoder",
                      description="dB log-mel -> waveform by NNLS + Griffin-Lim (no weights)")


@hookimpl
def audio_core_register_tasks(registry):
    registry.register("tokenizer", "audio_plugin_bsq.task:BSQTokenizerTask",
                      description="Trains bsq.tokenizer: log-mel reconstruction + "
                                  "commitment/entropy losses, SpecAugment, vocoded validation")


@hookimpl
def audio_core_register_presets(registry):
    registry.register_folder(PRESETS_DIR)
