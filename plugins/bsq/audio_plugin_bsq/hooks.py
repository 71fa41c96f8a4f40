"""Hook implementations of the ``bsq`` plugin.

Entry point ``bsq = "audio_plugin_bsq.hooks"`` in group ``audio_core``. Targets are
``"module:Class"`` strings so that loading this module never imports torch.
"""

from pathlib import Path

from audio_core.plugins import hookimpl

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


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
    registry.register("griffin_lim", "audio_plugin_bsq.vocoder:GriffinLimVocoder",
                      description="Vocoder: dB log-mel -> waveform by NNLS + Griffin-Lim")


@hookimpl
def audio_core_register_tasks(registry):
    registry.register("tokenizer", "audio_plugin_bsq.task:BSQTokenizerTask",
                      description="BSQ spectrogram tokenizer: log-mel reconstruction + "
                                  "commitment/entropy losses, vocoded validation")


@hookimpl
def audio_core_register_presets(registry):
    registry.register_folder(PRESETS_DIR)
