"""Importer ``soundstream.encodec_hf``: a transformers ``EncodecModel`` save_pretrained
folder -> an audio-core export of ``soundstream.encodec``.

Config mapping (``config.json`` -> run config): ``sampling_rate``/``audio_channels`` ->
``data``; ``upsampling_ratios`` reversed -> encoder/decoder ``ratios``; ``num_filters`` ->
``width``; ``hidden_size`` -> ``dim``; ``use_causal_conv``/``pad_mode``/``norm_type``/
``use_conv_shortcut``/``trim_right_ratio``/``dilation_growth_rate``/``num_lstm_layers`` and
the kernel sizes -> the same SEANet params; ``codebook_size`` and the codebook count
(``1000 * max(target_bandwidths) // (ceil(sampling_rate / hop) * bits)``) -> ``core.rvq``;
``normalize``, ``chunk_length_s``, ``overlap`` -> the model's ``normalize``,
``chunk_length``, ``chunk_stride`` in samples.

Weight mapping: ``{encoder,decoder}.layers.<i>.`` -> ``{encoder,decoder}.net.<i>.`` (same
layer order); old-style ``weight_g``/``weight_v`` -> the weight-norm parametrization;
``quantizer.layers.<i>.codebook.{embed,embed_avg,cluster_size,inited}`` ->
``quantizer.codebooks.<i>.{embed,embed_avg,cluster_size,initialized}``. Every tensor of the
built model must be filled and every source tensor used.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch

from audio_core.engine.imports import (
    ModelImportError,
    TransformersImporter,
    check_choice,
    check_complete,
    check_fields,
    placed,
    positive_int_list,
)
from audio_core.errors import shown

MODEL_TYPE = "encodec"
#: integer fields of config.json that must be >= 1
POSITIVE_INTS = ("hidden_size", "num_filters", "sampling_rate", "codebook_size",
                 "num_residual_layers", "dilation_growth_rate", "kernel_size",
                 "last_kernel_size", "residual_kernel_size", "compress")
#: the run config an import extends: its data, losses, discriminators and task are the
#: starting point of a fine-tune (``audio-core train OUT/config.yaml``)
BASE_PRESET = "soundstream.24khz"


def run_config(config: dict[str, Any], file: Path) -> dict[str, Any]:
    """The audio-core run config (a mapping) of EnCodec ``config`` (``config.json``)."""
    check_choice(config, "norm_type", ("weight_norm", "time_group_norm"), file)
    check_choice(config, "pad_mode", ("reflect", "constant"), file)
    check_choice(config, "audio_channels", (1, 2), file)
    if config.get("codebook_dim", config["hidden_size"]) != config["hidden_size"]:
        raise ModelImportError(f"{file}: codebook_dim = {shown(config['codebook_dim'])} must equal "
                               f"hidden_size = {shown(config['hidden_size'])}")
    if int(config.get("num_lstm_layers", 2)) < 1:
        raise ModelImportError(f"{file}: num_lstm_layers = {shown(config['num_lstm_layers'])} is "
                               f"not supported; supported: >= 1")
    ratios = list(reversed(positive_int_list(config, "upsampling_ratios", file)))
    size = int(config["codebook_size"])
    bits = math.log2(size)
    if not bits.is_integer():
        raise ModelImportError(f"{file}: codebook_size = {size} is not supported; supported: "
                               f"a power of two")
    rate, hop = int(config["sampling_rate"]), math.prod(ratios)
    n_q = int(1000 * max(config["target_bandwidths"]) // (math.ceil(rate / hop) * bits))
    if n_q < 1:
        raise ModelImportError(f"{file}: target_bandwidths {config['target_bandwidths']} give "
                               f"no codebook at {math.ceil(rate / hop)} frames/s")
    seanet = {"dim": config["hidden_size"], "width": config["num_filters"], "ratios": ratios,
              "residual_layers": config["num_residual_layers"],
              "dilation_base": config["dilation_growth_rate"],
              "kernel_size": config["kernel_size"],
              "last_kernel_size": config["last_kernel_size"],
              "residual_kernel_size": config["residual_kernel_size"],
              "compress": config["compress"], "lstm_layers": config["num_lstm_layers"],
              "causal": bool(config["use_causal_conv"]), "pad_mode": config["pad_mode"],
              "norm": config["norm_type"], "conv_shortcut": bool(config["use_conv_shortcut"])}
    chunk = config.get("chunk_length_s")
    length = int(chunk * rate) if chunk is not None else None
    stride = max(1, int((1.0 - config["overlap"]) * length)) \
        if length is not None and config.get("overlap") is not None else None
    return {
        "extends": BASE_PRESET,
        "run": {"name": "imported_encodec"},
        "data": {"sample_rate": rate, "channels": config["audio_channels"]},
        "model": {
            "type": "soundstream.encodec",
            "params": {"normalize": bool(config.get("normalize", False)),
                       "chunk_length": length, "chunk_stride": stride},
            "encoder": {"name": "soundstream.encodec_encoder", "params": seanet},
            "decoder": {"name": "soundstream.encodec_decoder",
                        "params": {**seanet,
                                   "trim_right_ratio": float(config["trim_right_ratio"])}},
            "quantizer": {"name": "core.rvq",
                          "params": {"dim": config["hidden_size"], "num_codebooks": n_q,
                                     "codebook_size": size, "decay": 0.99,
                                     "threshold_dead": 2.0, "dropout_prob": 1.0,
                                     "full_distances": True}},
        },
    }


_RENAMES = [
    (re.compile(r"^(encoder|decoder)\.layers\.(\d+)\."), r"\1.net.\2."),
    (re.compile(r"\.weight_g$"), ".parametrizations.weight.original0"),
    (re.compile(r"\.weight_v$"), ".parametrizations.weight.original1"),
    (re.compile(r"^quantizer\.layers\.(\d+)\.codebook\.inited$"),
     r"quantizer.codebooks.\1.initialized"),
    (re.compile(r"^quantizer\.layers\.(\d+)\.codebook\."), r"quantizer.codebooks.\1."),
]


def convert_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                       src: Path) -> dict[str, torch.Tensor]:
    """EnCodec tensors ``source`` renamed onto the keys of ``target`` (the built model's
    state dict); counters absent from EnCodec (``updates``, ``steps``) keep ``target``'s."""
    out: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        name = key
        for pattern, repl in _RENAMES:
            name = pattern.sub(repl, name)
        if name.endswith(".initialized"):
            value = value.reshape(()).bool()
        out[name] = placed(key, name, value, target, src)
    check_complete(out, target, src, optional=(".updates", "steps"))
    return {**target, **out}


class EncodecImporter(TransformersImporter):
    """``audio-core import`` for transformers ``EncodecModel`` folders."""

    model_type, name = MODEL_TYPE, "soundstream.encodec_hf"

    @staticmethod
    def run_config(config: dict[str, Any], file: Path) -> dict[str, Any]:
        check_fields(config, file, required=(
            "hidden_size", "num_filters", "upsampling_ratios", "sampling_rate",
            "codebook_size", "target_bandwidths"), positive_ints=POSITIVE_INTS)
        defaults = {"num_residual_layers": 1, "dilation_growth_rate": 2, "kernel_size": 7,
                    "last_kernel_size": 7, "residual_kernel_size": 3, "compress": 2,
                    "num_lstm_layers": 2, "use_causal_conv": True, "pad_mode": "reflect",
                    "norm_type": "weight_norm", "use_conv_shortcut": True,
                    "trim_right_ratio": 1.0, "audio_channels": 1}
        return run_config({**defaults, **config}, file)

    @staticmethod
    def convert_weights(weights: dict[str, torch.Tensor], target: dict[str, Any],
                        config: dict[str, Any], src: Path) -> dict[str, torch.Tensor]:
        return convert_state_dict(weights, target, src)
