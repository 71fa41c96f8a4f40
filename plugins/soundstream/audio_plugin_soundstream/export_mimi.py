"""Exporter ``soundstream.mimi_hf`` (``audio-core export --format transformers``): a
Mimi-layout model (``core.autoencoder`` with ``soundstream.mimi_encoder`` /
``soundstream.mimi_decoder`` + ``soundstream.split_rvq``) -> a folder that transformers
loads with ``MimiModel.from_pretrained`` (``config.json`` + ``model.safetensors``).

The inverse of :mod:`audio_plugin_soundstream.import_mimi`: ``config.json`` from the
component params (SEANet fields, ``ratios`` reversed -> ``upsampling_ratios``, the
transformer's, ``groups`` -> ``upsample_groups``, the quantizer's; ``frame_rate`` is
written only where the downsampling stride is not Mimi's 2); tensor names by
:func:`hf_name`, each checked to map back through the importer's
:func:`~audio_plugin_soundstream.import_mimi.target_name`. The codebooks' ``embed_sum``,
``cluster_usage`` and ``initialized`` buffers are written as the model holds them:
transformers' codebook vectors are ``embed_sum / max(cluster_usage, 1e-5)`` like ours.
transformers is not imported.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audio_core.engine.imports import ModelImportError
from audio_core.storage.checkpoint import save_safetensors
from audio_plugin_soundstream.export_encodec import _params
from audio_plugin_soundstream.import_mimi import target_name
from audio_plugin_soundstream.mimi import MimiDecoder, MimiEncoder
from audio_plugin_soundstream.mimi_quantizer import SplitResidualVQ
from audio_plugin_soundstream.mimi_transformer import MimiTransformer

#: audio-core SEANet param -> Mimi config field
FIELDS = {"dim": "hidden_size", "width": "num_filters", "residual_layers":
          "num_residual_layers", "dilation_base": "dilation_growth_rate", "kernel_size":
          "kernel_size", "last_kernel_size": "last_kernel_size", "residual_kernel_size":
          "residual_kernel_size", "compress": "compress", "causal": "use_causal_conv",
          "pad_mode": "pad_mode", "conv_shortcut": "use_conv_shortcut"}
#: audio-core transformer param -> Mimi config field
TRANSFORMER = {"layers": "num_hidden_layers", "heads": "num_attention_heads", "kv_heads":
               "num_key_value_heads", "head_dim": "head_dim", "ffn_dim": "intermediate_size",
               "window": "sliding_window", "layer_scale": "layer_scale_initial_scale",
               "norm_eps": "norm_eps", "bias": "attention_bias"}
#: codebook epsilon of transformers' MimiEuclideanCodebook
EPS = 1e-5

_RENAMES = [(re.compile(p), r) for p, r in (
    (r"^(encoder|decoder)\.seanet\.net\.(\d+)\.", r"\1.layers.\2."),
    (r"^(encoder|decoder)\.transformer\.", r"\1_transformer."),
    (r"^encoder\.downsample\.", "downsample."),
    (r"^decoder\.upsample\.", "upsample."),
    (r"\.attn_norm\.", ".input_layernorm."),
    (r"\.mlp_norm\.", ".post_attention_layernorm."),
    (r"\.attn\.([qkv])\.", r".self_attn.\1_proj."),
    (r"\.attn\.out\.", ".self_attn.o_proj."),
    (r"\.attn_scale$", ".self_attn_layer_scale.scale"),
    (r"\.mlp_scale$", ".mlp_layer_scale.scale"),
    (r"\.mlp\.0\.", ".mlp.fc1."),
    (r"\.mlp\.2\.", ".mlp.fc2."),
    (r"^(quantizer\.\w+)\.in_proj\.", r"\1.input_proj."),
    (r"^(quantizer\.\w+)\.out_proj\.", r"\1.output_proj."),
    (r"^(quantizer\.\w+)\.codebooks\.(\d+)\.", r"\1.layers.\2.codebook."),
    (r"^quantizer\.(semantic|acoustic)\.", r"quantizer.\1_residual_vector_quantizer."),
)]


def _transformer(params: dict[str, Any], dim: int) -> dict[str, Any]:
    """The transformer params with their defaults (``kv_heads``/``head_dim`` resolved)."""
    full = _params(MimiTransformer, {"dim": dim, **dict(params or {})})
    full["kv_heads"] = full["kv_heads"] or full["heads"]
    full["head_dim"] = full["head_dim"] or dim // full["heads"]
    return full


def hf_config(model: nn.Module) -> dict[str, Any]:
    """Mimi ``config.json`` content of ``model`` (:class:`ModelImportError` naming the
    setting Mimi cannot express)."""
    if getattr(model, "config", None) is None:
        raise ModelImportError("--format transformers needs a model loaded with "
                               "audio_core.load (its run config gives the Mimi settings)")
    cfg = model.config.model
    enc = _params(MimiEncoder, dict(cfg.encoder.params))
    dec = _params(MimiDecoder, dict(cfg.decoder.params))
    enc["channels"], dec["channels"] = model.encoder.channels, model.decoder.channels
    enc["transformer"] = _transformer(enc["transformer"], enc["dim"])
    dec["transformer"] = _transformer(dec["transformer"], dec["dim"])
    for key in (*FIELDS, "channels", "stride", "transformer"):
        if enc[key] != dec[key]:
            raise ModelImportError(f"Mimi needs the same {key} in model.encoder.params and "
                                   f"model.decoder.params, got {enc[key]!r} and {dec[key]!r}")
    ratios = [int(r) for r in enc["ratios"]]
    if [int(r) for r in dec["ratios"]] != ratios:
        raise ModelImportError(f"Mimi needs the same ratios in model.encoder.params and "
                               f"model.decoder.params, got {ratios} and {list(dec['ratios'])}")
    q = model.quantizer
    books = [*q.semantic.codebooks, *q.acoustic.codebooks]
    if any(book.eps != EPS for book in books):
        raise ModelImportError(f"Mimi's codebooks divide by max(cluster_usage, {EPS}); this "
                               f"model's eps is {books[0].eps}")
    codebook_dim = books[0].embed_sum.shape[1]
    tf = enc["transformer"]
    config = {FIELDS[k]: enc[k] for k in FIELDS}
    config.update({TRANSFORMER[k]: tf[k] for k in TRANSFORMER})
    config.update(
        architectures=["MimiModel"], model_type="mimi", sampling_rate=model.sample_rate,
        audio_channels=enc["channels"], upsampling_ratios=list(reversed(ratios)),
        rope_parameters={"rope_type": "default", "rope_theta": float(tf["theta"])},
        hidden_act="gelu", upsample_groups=dec["groups"],
        trim_right_ratio=float(dec["trim_right_ratio"]), num_quantizers=q.num_codebooks,
        num_semantic_quantizers=q.num_semantic, codebook_size=q.codebook_size,
        codebook_dim=codebook_dim, vector_quantization_hidden_dimension=codebook_dim,
        use_cache=False)
    seanet_rate = math.ceil(model.sample_rate / math.prod(ratios))
    if enc["stride"] != 2:  # transformers' default frame rate is sampling_rate / (2 hop)
        config["frame_rate"] = seanet_rate / enc["stride"]
    return config


def hf_name(key: str) -> str:
    """transformers' name of the model's tensor ``key``."""
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return key


def hf_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict under Mimi's names, each name checked against the importer's
    rename (so export and import stay inverse)."""
    tensors = {}
    for key, value in model.state_dict().items():
        name = hf_name(key)
        if target_name(name) != key:
            raise ModelImportError(f"tensor {key!r}: Mimi name {name!r} imports as "
                                   f"{target_name(name)!r}")
        tensors[name] = value.detach().float().contiguous()
    return tensors


class MimiExporter:
    """``audio-core export --format transformers`` for Mimi-layout models."""

    format = "transformers"

    @staticmethod
    def accepts(model: nn.Module) -> bool:
        return (isinstance(getattr(model, "encoder", None), MimiEncoder)
                and isinstance(getattr(model, "decoder", None), MimiDecoder)
                and isinstance(getattr(model, "quantizer", None), SplitResidualVQ))

    @staticmethod
    def export(model: nn.Module, out: Path) -> Path:
        config = hf_config(model)
        tensors = hf_tensors(model)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        save_safetensors(tensors, out / "model.safetensors")
        return out
