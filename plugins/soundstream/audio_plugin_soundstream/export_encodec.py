"""Exporter ``soundstream.encodec_hf`` (``audio-core export --format transformers``): an
EnCodec-layout model (``soundstream.encodec_encoder`` / ``encodec_decoder`` + ``core.rvq``,
in ``soundstream.encodec`` or ``core.autoencoder``) -> a folder that transformers loads
with ``EncodecModel.from_pretrained`` (``config.json`` + ``model.safetensors``).

The inverse of :mod:`audio_plugin_soundstream.import_encodec`: ``net.<i>`` ->
``layers.<i>``, ``codebooks.<i>.X`` -> ``layers.<i>.codebook.X``, ``initialized`` ->
``inited``; ``target_bandwidths`` lists the bitrates of 1, 2, 4, ... codebooks and of all
of them, so ``encode(x, bandwidth=b)`` uses the same codebook counts. transformers is not
imported.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from pathlib import Path
from typing import Any

from torch import nn

from audio_core.engine.imports import ModelImportError
from audio_core.storage.checkpoint import save_safetensors
from audio_plugin_soundstream.encodec import EncodecDecoder, EncodecEncoder

#: audio-core SEANet param -> EnCodec config field (both networks share them)
FIELDS = {"dim": "hidden_size", "width": "num_filters", "residual_layers":
          "num_residual_layers", "dilation_base": "dilation_growth_rate", "kernel_size":
          "kernel_size", "last_kernel_size": "last_kernel_size", "residual_kernel_size":
          "residual_kernel_size", "compress": "compress", "lstm_layers": "num_lstm_layers",
          "causal": "use_causal_conv", "pad_mode": "pad_mode", "norm": "norm_type",
          "conv_shortcut": "use_conv_shortcut"}


def _params(cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` over the defaults of ``cls``'s constructor."""
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, **given}


def bandwidths(n_codebooks: int, frame_rate: int, bits: int) -> list[float]:
    """kbps of 1, 2, 4, ... and ``n_codebooks`` codebooks, each mapping back to its count
    under EnCodec's ``floor(kbps * 1000 / (frame_rate * bits))``."""
    counts = sorted({2 ** i for i in range(n_codebooks.bit_length())
                     if 2 ** i <= n_codebooks} | {n_codebooks})
    out = []
    for n in counts:
        kbps = n * frame_rate * bits / 1000
        if math.floor(kbps * 1000 / (frame_rate * bits)) < n:  # float rounding
            kbps = math.nextafter(kbps, math.inf)
        out.append(kbps)
    return out


def hf_config(model: nn.Module) -> dict[str, Any]:
    """EnCodec ``config.json`` content of ``model`` (:class:`ModelImportError` naming the
    setting EnCodec cannot express)."""
    if getattr(model, "config", None) is None:
        raise ModelImportError("--format transformers needs a model loaded with "
                               "audio_core.load (its run config gives the EnCodec settings)")
    cfg = model.config.model
    enc = _params(EncodecEncoder, dict(cfg.encoder.params))
    dec = _params(EncodecDecoder, dict(cfg.decoder.params))
    trim = dec.pop("trim_right_ratio")
    for key in FIELDS:
        if enc[key] != dec[key]:
            raise ModelImportError(f"EnCodec needs the same {key} in model.encoder.params and "
                                   f"model.decoder.params, got {enc[key]!r} and {dec[key]!r}")
    if list(enc["ratios"]) != list(dec["ratios"]) or enc["lstm_layers"] < 1:
        raise ModelImportError("EnCodec needs equal encoder/decoder ratios and lstm_layers "
                               ">= 1")
    q = model.quantizer
    if q.dim != enc["dim"] or 2 ** q.codebook_bits != q.codebook_size:
        raise ModelImportError(f"EnCodec needs a power-of-two codebook_size and quantizer dim "
                               f"= encoder dim; got {q.codebook_size}, {q.dim} vs {enc['dim']}")
    rate, hop = model.sample_rate, math.prod(enc["ratios"])
    chunk = getattr(model, "chunk_length", None)
    stride = getattr(model, "chunk_stride", None)
    config = {FIELDS[k]: enc[k] for k in FIELDS}
    config.update(
        architectures=["EncodecModel"], model_type="encodec", sampling_rate=rate,
        audio_channels=model.channels, upsampling_ratios=list(reversed(enc["ratios"])),
        trim_right_ratio=trim, codebook_size=q.codebook_size, codebook_dim=q.dim,
        target_bandwidths=bandwidths(q.num_codebooks, math.ceil(rate / hop),
                                     q.codebook_bits),
        normalize=bool(getattr(model, "normalize", False)),
        chunk_length_s=chunk / rate if chunk else None,
        overlap=1 - stride / chunk if chunk else None)
    return config


_RENAMES = [
    (re.compile(r"^(encoder|decoder)\.net\.(\d+)\."), r"\1.layers.\2."),
    (re.compile(r"^quantizer\.codebooks\.(\d+)\.initialized$"),
     r"quantizer.layers.\1.codebook.inited"),
    (re.compile(r"^quantizer\.codebooks\.(\d+)\.(embed|embed_avg|cluster_size)$"),
     r"quantizer.layers.\1.codebook.\2"),
]


class EncodecExporter:
    """``audio-core export --format transformers`` for EnCodec-layout models."""

    format = "transformers"

    @staticmethod
    def accepts(model: nn.Module) -> bool:
        from audio_core.components.rvq import ResidualVQ

        return (isinstance(getattr(model, "encoder", None), EncodecEncoder)
                and isinstance(getattr(model, "decoder", None), EncodecDecoder)
                and isinstance(getattr(model, "quantizer", None), ResidualVQ))

    @staticmethod
    def export(model: nn.Module, out: Path) -> Path:
        config = hf_config(model)
        tensors = {}
        for key, value in model.state_dict().items():
            if key.endswith((".updates", "quantizer.steps")):
                continue  # audio-core's training counters
            name = key
            for pattern, repl in _RENAMES:
                name = pattern.sub(repl, name)
            tensors[name] = value.float().reshape(1) if name.endswith(".inited") else value
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        save_safetensors(tensors, out / "model.safetensors")
        return out
