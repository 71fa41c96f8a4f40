"""Importer ``soundstream.mimi_hf``: a transformers ``MimiModel`` save_pretrained folder ->
an audio-core export of ``core.autoencoder`` with ``soundstream.mimi_encoder``,
``soundstream.split_rvq`` and ``soundstream.mimi_decoder``.

Config mapping (``config.json`` -> run config): ``sampling_rate``/``audio_channels`` ->
``data``; ``upsampling_ratios`` reversed -> ``ratios``; ``num_filters`` -> ``width``;
``hidden_size`` -> ``dim``; the SEANet fields as for EnCodec; the resampling ``stride`` is
``ceil(sampling_rate / hop) / frame_rate`` (``frame_rate`` from ``config.json`` if given,
else ``sampling_rate / (2 hop)``: 2, i.e. 12.5 Hz, for the published model);
``upsample_groups`` -> decoder ``groups``; ``num_hidden_layers``, ``num_attention_heads``,
``num_key_value_heads``, ``head_dim``, ``intermediate_size``, ``sliding_window``, the rope
theta, ``layer_scale_initial_scale``, ``norm_eps``, ``attention_bias`` -> both
transformers; ``num_quantizers``, ``num_semantic_quantizers``, ``codebook_size``,
``codebook_dim`` -> ``soundstream.split_rvq``.

Weight mapping: ``encoder.layers.<i>`` / ``decoder.layers.<i>`` -> ``encoder.seanet.net.<i>``
/ ``decoder.seanet.net.<i>``; ``encoder_transformer`` / ``decoder_transformer`` ->
``{encoder,decoder}.transformer`` (``input_layernorm`` -> ``attn_norm``,
``self_attn.{q,k,v,o}_proj`` -> ``attn.{q,k,v,out}``, ``self_attn_layer_scale.scale`` ->
``attn_scale``, ``post_attention_layernorm`` -> ``mlp_norm``, ``mlp.fc1``/``fc2`` ->
``mlp.0``/``mlp.2``, ``mlp_layer_scale.scale`` -> ``mlp_scale``); ``downsample`` ->
``encoder.downsample``, ``upsample`` -> ``decoder.upsample``;
``quantizer.{semantic,acoustic}_residual_vector_quantizer.{input,output}_proj`` ->
``quantizer.{semantic,acoustic}.{in,out}_proj`` and ``...layers.<i>.codebook.<buffer>`` ->
``...codebooks.<i>.<buffer>``. transformers' nested layout (``encoder.encoder_seanet``,
``decoder.decoder_transformer`` ...) is read too.
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
from audio_plugin_soundstream.import_encodec import BASE_PRESET

MODEL_TYPE = "mimi"
#: integer fields of config.json that must be >= 1
POSITIVE_INTS = ("hidden_size", "num_filters", "sampling_rate", "codebook_size",
                 "num_residual_layers", "dilation_growth_rate", "kernel_size",
                 "last_kernel_size", "residual_kernel_size", "compress",
                 "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "sliding_window", "num_quantizers", "num_semantic_quantizers",
                 "upsample_groups")
DEFAULTS = {"audio_channels": 1, "num_residual_layers": 1, "dilation_growth_rate": 2,
            "kernel_size": 7, "last_kernel_size": 3, "residual_kernel_size": 3, "compress": 2,
            "use_causal_conv": True, "pad_mode": "constant", "trim_right_ratio": 1.0,
            "use_conv_shortcut": False, "num_semantic_quantizers": 1, "upsample_groups": 512,
            "num_hidden_layers": 8, "intermediate_size": 2048, "num_attention_heads": 8,
            "sliding_window": 250, "layer_scale_initial_scale": 0.01, "norm_eps": 1e-5,
            "attention_bias": False, "hidden_act": "gelu"}
REQUIRED = ("sampling_rate", "hidden_size", "num_filters", "upsampling_ratios",
            "codebook_size", "num_quantizers")


def _rope_theta(config: dict[str, Any], file: Path) -> float:
    rope = config.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default":
        raise ModelImportError(f"{file}: rope_parameters.rope_type = "
                               f"{shown(rope.get('rope_type'))} is not supported; supported: "
                               f"'default'")
    return float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))


def _stride(config: dict[str, Any], hop: int, file: Path) -> int:
    """The downsampling factor between the SEANet frames and the codec's frames."""
    rate = config["sampling_rate"]
    seanet_rate = math.ceil(rate / hop)
    frame_rate = config.get("frame_rate") or config.get("_frame_rate") or rate / (2 * hop)
    if frame_rate == seanet_rate:
        return 1
    stride = int(seanet_rate / frame_rate)
    if stride < 2:
        raise ModelImportError(f"{file}: frame_rate = {shown(frame_rate)} is not supported; "
                               f"supported: {seanet_rate} Hz (the SEANet's) divided by an "
                               f"integer >= 1")
    return stride


def run_config(config: dict[str, Any], file: Path) -> dict[str, Any]:
    """The audio-core run config (a mapping) of Mimi ``config`` (``config.json``, the
    defaults of transformers' ``MimiConfig`` filled in)."""
    check_fields(config, file, required=REQUIRED)
    config = {**DEFAULTS, **config}
    check_fields(config, file, positive_ints=POSITIVE_INTS)
    check_choice(config, "pad_mode", ("constant", "reflect"), file)
    check_choice(config, "audio_channels", (1, 2), file)
    check_choice(config, "hidden_act", ("gelu",), file)
    dim = int(config["hidden_size"])
    codebook_dim = int(config.get("codebook_dim") or dim)
    vq_dim = config.get("vector_quantization_hidden_dimension", codebook_dim)
    if vq_dim != codebook_dim:
        raise ModelImportError(f"{file}: vector_quantization_hidden_dimension = {shown(vq_dim)} "
                               f"must equal codebook_dim = {codebook_dim}")
    ratios = list(reversed(positive_int_list(config, "upsampling_ratios", file)))
    stride = _stride(config, math.prod(ratios), file)
    seanet = {"dim": dim, "width": config["num_filters"], "ratios": ratios,
              "residual_layers": config["num_residual_layers"],
              "dilation_base": config["dilation_growth_rate"],
              "kernel_size": config["kernel_size"],
              "last_kernel_size": config["last_kernel_size"],
              "residual_kernel_size": config["residual_kernel_size"],
              "compress": config["compress"], "causal": bool(config["use_causal_conv"]),
              "pad_mode": config["pad_mode"],
              "conv_shortcut": bool(config["use_conv_shortcut"]), "stride": stride,
              "transformer": {
                  "layers": config["num_hidden_layers"],
                  "heads": config["num_attention_heads"],
                  "kv_heads": config.get("num_key_value_heads") or
                  config["num_attention_heads"],
                  "head_dim": config.get("head_dim") or dim // config["num_attention_heads"],
                  "ffn_dim": config["intermediate_size"], "window": config["sliding_window"],
                  "theta": _rope_theta(config, file),
                  "layer_scale": config["layer_scale_initial_scale"],
                  "norm_eps": config["norm_eps"], "bias": bool(config["attention_bias"])}}
    return {
        "extends": BASE_PRESET,
        "run": {"name": "imported_mimi"},
        "data": {"sample_rate": int(config["sampling_rate"]),
                 "channels": config["audio_channels"]},
        "model": {
            "type": "core.autoencoder",
            "encoder": {"name": "soundstream.mimi_encoder", "params": seanet},
            "decoder": {"name": "soundstream.mimi_decoder",
                        "params": {**seanet, "groups": config["upsample_groups"],
                                   "trim_right_ratio": float(config["trim_right_ratio"])}},
            "quantizer": {"name": "soundstream.split_rvq",
                          "params": {"dim": dim, "num_codebooks": config["num_quantizers"],
                                     "num_semantic": config["num_semantic_quantizers"],
                                     "codebook_size": config["codebook_size"],
                                     "codebook_dim": codebook_dim}},
        },
    }


_NESTED = [(re.compile(p), r) for p, r in (
    (r"^encoder\.encoder_seanet\.", "encoder."),
    (r"^encoder\.(encoder_transformer|downsample)\.", r"\1."),
    (r"^decoder\.decoder_seanet\.", "decoder."),
    (r"^decoder\.(decoder_transformer|upsample)\.", r"\1."),
)]
_RENAMES = [(re.compile(p), r) for p, r in (
    (r"^(encoder|decoder)\.layers\.(\d+)\.", r"\1.seanet.net.\2."),
    (r"^(encoder|decoder)_transformer\.", r"\1.transformer."),
    (r"^downsample\.", "encoder.downsample."),
    (r"^upsample\.", "decoder.upsample."),
    (r"\.input_layernorm\.", ".attn_norm."),
    (r"\.post_attention_layernorm\.", ".mlp_norm."),
    (r"\.self_attn\.([qkv])_proj\.", r".attn.\1."),
    (r"\.self_attn\.o_proj\.", ".attn.out."),
    (r"\.self_attn_layer_scale\.scale$", ".attn_scale"),
    (r"\.mlp_layer_scale\.scale$", ".mlp_scale"),
    (r"\.mlp\.fc1\.", ".mlp.0."),
    (r"\.mlp\.fc2\.", ".mlp.2."),
    (r"^quantizer\.(semantic|acoustic)_residual_vector_quantizer\.", r"quantizer.\1."),
    (r"^(quantizer\.\w+)\.input_proj\.", r"\1.in_proj."),
    (r"^(quantizer\.\w+)\.output_proj\.", r"\1.out_proj."),
    (r"^(quantizer\.\w+)\.layers\.(\d+)\.codebook\.", r"\1.codebooks.\2."),
)]


def target_name(key: str) -> str:
    """The converted model's name of transformers tensor ``key``."""
    for pattern, repl in _NESTED + _RENAMES:
        key = pattern.sub(repl, key)
    return key


def convert_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                       src: Path) -> dict[str, torch.Tensor]:
    """Mimi tensors ``source`` renamed onto the keys of ``target`` (the built model's
    state dict); every target tensor must be filled."""
    out: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        name = target_name(key)
        out[name] = placed(key, name, value, target, src)
    check_complete(out, target, src)
    return out


class MimiImporter(TransformersImporter):
    """``audio-core import`` for transformers ``MimiModel`` folders."""

    model_type, name = MODEL_TYPE, "soundstream.mimi_hf"
    run_config = staticmethod(run_config)

    @staticmethod
    def convert_weights(weights: dict[str, torch.Tensor], target: dict[str, Any],
                        config: dict[str, Any], src: Path) -> dict[str, torch.Tensor]:
        return convert_state_dict(weights, target, src)
