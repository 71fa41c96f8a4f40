"""Exporter ``soundstream.dac_hf`` (``audio-core export --format transformers``): a
DAC-layout model (``core.autoencoder`` with ``soundstream.dac_encoder`` /
``soundstream.dac_decoder`` + ``soundstream.factorized_rvq``) -> a folder that transformers
loads with ``DacModel.from_pretrained`` (``config.json`` + ``model.safetensors``).

The inverse of :mod:`audio_plugin_soundstream.import_dac`: ``config.json`` from the
component params (``width`` -> ``encoder_hidden_size`` / ``decoder_hidden_size``,
``ratios`` -> ``downsampling_ratios`` and, reversed, ``upsampling_ratios``, the quantizer's
fields, ``sampling_rate``); tensor names by :func:`hf_name`, each checked to map back
through the importer's rename. transformers is not imported.
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
from audio_plugin_soundstream.dac import DacDecoder, DacEncoder
from audio_plugin_soundstream.export_encodec import _params
from audio_plugin_soundstream.factorized_vq import FactorizedResidualVQ
from audio_plugin_soundstream.import_dac import target_name

#: a residual unit's ``block.<i>`` -> DAC's name
UNIT = ("snake1", "conv1", "snake2", "conv2")
#: a down/upsampling block's ``<i>`` -> DAC's name, per side
BLOCK = {"encoder": ("res_unit1", "res_unit2", "res_unit3", "snake1", "conv1"),
         "decoder": ("snake1", "conv_t1", "res_unit1", "res_unit2", "res_unit3")}
_KEY = re.compile(r"^(encoder|decoder)\.net\.(\d+)\.(?:(\d+)\.)?(?:block\.(\d+)\.)?(\w+)$")


def hf_config(model: nn.Module) -> dict[str, Any]:
    """DAC ``config.json`` content of ``model`` (:class:`ModelImportError` naming the
    setting DAC cannot express)."""
    if getattr(model, "config", None) is None:
        raise ModelImportError("--format transformers needs a model loaded with "
                               "audio_core.load (its run config gives the DAC settings)")
    cfg = model.config.model
    enc = _params(DacEncoder, dict(cfg.encoder.params))
    dec = _params(DacDecoder, dict(cfg.decoder.params))
    enc["channels"], dec["channels"] = model.encoder.channels, model.decoder.channels
    q = model.quantizer
    ratios = [int(r) for r in enc["ratios"]]
    dim = enc["width"] * 2 ** len(ratios)
    if [int(r) for r in dec["ratios"]] != ratios:
        raise ModelImportError(f"DAC needs the same ratios in model.encoder.params and "
                               f"model.decoder.params, got {ratios} and {list(dec['ratios'])}")
    if enc["channels"] != 1 or dec["channels"] != 1:
        raise ModelImportError(f"DAC is mono; model.encoder/decoder.params channels = "
                               f"{enc['channels']}/{dec['channels']}")
    if dec["dim"] != dim or q.dim != dim:
        raise ModelImportError(f"DAC needs decoder dim = quantizer dim = encoder width * 2 ** "
                               f"len(ratios) = {dim}; got {dec['dim']} and {q.dim}")
    return {
        "architectures": ["DacModel"], "model_type": "dac",
        "encoder_hidden_size": enc["width"], "downsampling_ratios": ratios,
        "decoder_hidden_size": dec["width"], "upsampling_ratios": list(reversed(ratios)),
        "hidden_size": dim, "hop_length": math.prod(ratios),
        "n_codebooks": q.num_codebooks, "codebook_size": q.codebook_size,
        "codebook_dim": q.stages[0].codebook.embedding_dim,
        "commitment_loss_weight": q.commitment_weight,
        "codebook_loss_weight": q.codebook_weight,
        "quantizer_dropout": float(getattr(q, "dropout_prob", 0.0)),
        "sampling_rate": model.sample_rate,
    }


def hf_name(key: str, blocks: int) -> str:
    """DAC's name of the model's tensor ``key`` (``blocks`` down/upsampling blocks)."""
    if key.startswith("quantizer.stages."):
        return "quantizer.quantizers." + key[len("quantizer.stages."):]
    match = _KEY.match(key)
    if match is None:
        raise ModelImportError(f"tensor {key!r} has no place in a transformers DacModel")
    side, layer, part, unit, leaf = match.groups()
    index = int(layer)
    if index == 0 or index > blocks:
        name = {0: "conv1", blocks + 1: "snake1", blocks + 2: "conv2"}.get(index)
        if name is None or part is not None:
            raise ModelImportError(f"tensor {key!r} has no place in a transformers DacModel")
        return f"{side}.{name}.{leaf}"
    name = f"{side}.block.{index - 1}.{BLOCK[side][int(part)]}"
    return f"{name}.{UNIT[int(unit)]}.{leaf}" if unit is not None else f"{name}.{leaf}"


def hf_tensors(model: nn.Module, blocks: int) -> dict[str, torch.Tensor]:
    """The model's state dict under DAC's names, each name checked against the importer's
    rename (so export and import stay inverse)."""
    tensors = {}
    for key, value in model.state_dict().items():
        name = hf_name(key, blocks)
        if target_name(name, blocks) != key:
            raise ModelImportError(f"tensor {key!r}: DAC name {name!r} imports as "
                                   f"{target_name(name, blocks)!r}")
        tensors[name] = value.detach().float().contiguous()
    return tensors


class DacExporter:
    """``audio-core export --format transformers`` for DAC-layout models."""

    format = "transformers"

    @staticmethod
    def accepts(model: nn.Module) -> bool:
        return (isinstance(getattr(model, "encoder", None), DacEncoder)
                and isinstance(getattr(model, "decoder", None), DacDecoder)
                and isinstance(getattr(model, "quantizer", None), FactorizedResidualVQ))

    @staticmethod
    def export(model: nn.Module, out: Path) -> Path:
        config = hf_config(model)
        tensors = hf_tensors(model, len(config["downsampling_ratios"]))
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        save_safetensors(tensors, out / "model.safetensors")
        return out
