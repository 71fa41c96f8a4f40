"""The BSQ tokenizer's ONNX graphs (``audio-core export --format onnx``).

    encoder.onnx   waveform (batch, 1, time) -> codes int64 (batch, freq_patches * k, steps)
                   (:meth:`~audio_plugin_bsq.model.BSQTokenizer.encode_codes`: dB mel,
                   chunks, transformer, BSQ bits -> integers)
    decoder.onnx   codes (batch, freq_patches * k, steps) [, phase] -> waveform (batch, 1,
                   steps * samples_per_step) (:meth:`decode_codes`: bits -> +-1/sqrt(d)
                   points, projection, transformer, dB mel, vocoder)

With the default Griffin-Lim vocoder the decoder also takes ``phase``, the initial phases in
cycles (uniform in [0, 1), ``(batch, n_fft // 2 + 1, mel frames)``, :func:`phase_shape`):
``decode_codes`` draws them with ``torch.rand`` from a CPU generator seeded with the
vocoder's ``seed``; given those, the graph gives ``decode_codes``' waveform. A vocoder
without phases (a neural vocoder) gives a decoder of the codes alone.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from audio_core.contracts.onnx import OnnxGraphs
from audio_core.engine.onnx_export import griffin_lim_phase_input


class EncoderGraph(nn.Module):
    """waveform -> codes (``encode_codes``)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveform: Tensor) -> Tensor:
        return self.model.encode_codes(waveform)


class DecoderGraph(nn.Module):
    """codes (and the vocoder's initial phases) -> waveform (``decode_codes``)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, codes: Tensor, phase: Tensor | None = None) -> Tensor:
        length = codes.shape[-1] * self.model.samples_per_step
        mel = self.model.decode_mel(self.model.codes_to_tokens(codes),
                                    1 + length // self.model.hop_length)
        return self.model.mel_to_waveform(
            mel, length, None if phase is None else phase[..., :mel.shape[-1]])


def phase_shape(model: Any, codes: Tensor) -> tuple[int, int, int]:
    """The phases ``decode_codes`` draws for ``codes`` ``(batch, rows, steps)``: ``(batch,
    n_fft // 2 + 1, mel frames)``, ``steps * patch_time`` mel frames, one more when the steps
    are padded to whole chunks (``steps > max_time_patches`` and not a multiple of it)."""
    steps, chunk = codes.shape[-1], model.encoder.max_time_patches
    padded = steps > chunk and steps % chunk
    return (codes.shape[0], model.n_fft // 2 + 1, steps * model.patch_time + int(bool(padded)))


def onnx_graphs(model: Any) -> OnnxGraphs:
    """The codes graphs of a :class:`~audio_plugin_bsq.model.BSQTokenizer`."""
    spec = model.codec_spec()
    info: dict[str, Any] = {"num_codebooks": spec.num_codebooks,
                            "codebook_size": 2 ** spec.codebook_bits,
                            "hop_length": model.samples_per_step}
    chunk = model.encoder.max_time_patches
    extra, decoder, make_extra = griffin_lim_phase_input(
        model.vocoder, "codes", f"steps * {model.patch_time} (+ 1 when steps > {chunk} and "
        f"not a multiple of it)", lambda codes: phase_shape(model, codes))
    if decoder:
        info["decoder"] = decoder
    return OnnxGraphs(EncoderGraph(model), DecoderGraph(model), "codes",
                      {0: "batch", 2: "frames"}, extra=extra, make_extra=make_extra, info=info)
