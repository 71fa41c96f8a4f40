"""Importer ``soundstream.dac_hf``: a transformers ``DacModel`` save_pretrained folder ->
an audio-core export of ``core.autoencoder`` with ``soundstream.dac_encoder``,
``soundstream.factorized_rvq`` and ``soundstream.dac_decoder``.

Config mapping: ``encoder_hidden_size`` -> encoder ``width``; ``downsampling_ratios`` ->
``ratios``; ``decoder_hidden_size`` -> decoder ``width``; ``n_codebooks``,
``codebook_size``, ``codebook_dim``, ``commitment_loss_weight``, ``codebook_loss_weight``,
``quantizer_dropout`` -> the quantizer; ``sampling_rate`` -> ``data.sample_rate`` (mono).

Weight mapping (``net`` holds DAC's layers in order): ``encoder.conv1`` -> ``net.0``,
``encoder.block.<i>`` -> ``net.<i+1>`` (``res_unit1..3``, ``snake1``, ``conv1`` ->
``0..4``), ``encoder.snake1``/``conv2`` -> the last two; the decoder likewise
(``snake1``, ``conv_t1``, ``res_unit1..3`` -> ``0..4``); residual units' ``snake1``,
``conv1``, ``snake2``, ``conv2`` -> ``block.0..3``; ``quantizer.quantizers.<i>`` ->
``quantizer.stages.<i>``. Weight-normed tensors (``weight_g``/``weight_v`` or
``parametrizations.weight.original0/1``) are folded into plain weights.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from audio_core.engine.imports import (
    ModelImportError,
    TransformersImporter,
    check_complete,
    check_fields,
    placed,
    positive_int_list,
)
from audio_core.errors import shown
from audio_plugin_soundstream.import_encodec import BASE_PRESET

MODEL_TYPE = "dac"
REQUIRED = ("encoder_hidden_size", "downsampling_ratios", "decoder_hidden_size",
            "n_codebooks", "codebook_size", "codebook_dim", "sampling_rate")


def run_config(config: dict[str, Any], file: Path) -> dict[str, Any]:
    """The audio-core run config (a mapping) of DAC ``config`` (``config.json``)."""
    check_fields(config, file, required=REQUIRED)
    ratios = positive_int_list(config, "downsampling_ratios", file)
    dim = int(config["encoder_hidden_size"]) * 2 ** len(ratios)
    if config.get("hidden_size", dim) != dim:
        raise ModelImportError(f"{file}: hidden_size = {shown(config['hidden_size'])} is not "
                               f"supported; supported: encoder_hidden_size * 2 ** "
                               f"len(downsampling_ratios) = {dim}")
    return {
        "extends": BASE_PRESET,
        "run": {"name": "imported_dac"},
        "data": {"sample_rate": int(config["sampling_rate"]), "channels": 1},
        "model": {
            "type": "core.autoencoder",
            "encoder": {"name": "soundstream.dac_encoder",
                        "params": {"width": config["encoder_hidden_size"], "ratios": ratios}},
            "decoder": {"name": "soundstream.dac_decoder",
                        "params": {"dim": dim, "width": config["decoder_hidden_size"],
                                   "ratios": ratios}},
            "quantizer": {"name": "soundstream.factorized_rvq",
                          "params": {"dim": dim, "num_codebooks": config["n_codebooks"],
                                     "codebook_size": config["codebook_size"],
                                     "codebook_dim": config["codebook_dim"],
                                     "commitment_weight": config.get("commitment_loss_weight",
                                                                     0.25),
                                     "codebook_weight": config.get("codebook_loss_weight", 1.0),
                                     "dropout_prob": config.get("quantizer_dropout", 0.0)}},
        },
    }


def _fold_weight_norm(source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``g * v / ||v||`` (norm over every axis but the first) for each weight-normed pair."""
    out = dict(source)
    for key in [k for k in source if k.endswith(("weight_g", "original0"))]:
        stem = key[: -len("weight_g")] if key.endswith("weight_g") else \
            key[: -len("parametrizations.weight.original0")]
        v_key = stem + ("weight_v" if key.endswith("weight_g")
                        else "parametrizations.weight.original1")
        g, v = out.pop(key), out.pop(v_key)
        norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))
        out[stem + "weight"] = g * v / norm
    return out


def _renames(blocks: int) -> list[tuple[re.Pattern[str], str]]:
    last = blocks + 1
    unit = {"snake1": "0", "conv1": "1", "snake2": "2", "conv2": "3"}
    rules = [(r"^encoder\.conv1\.", "encoder.net.0."),
             (r"^encoder\.snake1\.", f"encoder.net.{last}."),
             (r"^encoder\.conv2\.", f"encoder.net.{last + 1}."),
             (r"^decoder\.conv1\.", "decoder.net.0."),
             (r"^decoder\.snake1\.", f"decoder.net.{last}."),
             (r"^decoder\.conv2\.", f"decoder.net.{last + 1}."),
             (r"^quantizer\.quantizers\.", "quantizer.stages.")]
    for i, name in enumerate(("res_unit1", "res_unit2", "res_unit3", "snake1", "conv1")):
        rules.append((rf"^encoder\.block\.(\d+)\.{name}\.", rf"encoder.net.B\1.{i}."))
    for i, name in enumerate(("snake1", "conv_t1", "res_unit1", "res_unit2", "res_unit3")):
        rules.append((rf"^decoder\.block\.(\d+)\.{name}\.", rf"decoder.net.B\1.{i}."))
    for name, index in unit.items():
        rules.append((rf"^((?:en|de)coder\.net\.B?\d+\.\d+\.){name}\.", rf"\1block.{index}."))
    return [(re.compile(p), r) for p, r in rules]


def target_name(key: str, blocks: int) -> str:
    """The converted model's name of DAC tensor ``key`` (``blocks`` = number of
    down/upsampling blocks)."""
    for pattern, repl in _renames(blocks):
        key = pattern.sub(repl, key)
    return re.sub(r"\.net\.B(\d+)\.", lambda m: f".net.{int(m.group(1)) + 1}.", key)


def convert_state_dict(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                       blocks: int, src: Path) -> dict[str, torch.Tensor]:
    """DAC tensors renamed onto the built model's keys (``target``)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in _fold_weight_norm(source).items():
        name = target_name(key, blocks)
        out[name] = placed(key, name, value, target, src)
    check_complete(out, target, src)
    return out


class DacImporter(TransformersImporter):
    """``audio-core import`` for transformers ``DacModel`` folders."""

    model_type, name = MODEL_TYPE, "soundstream.dac_hf"
    run_config = staticmethod(run_config)

    @staticmethod
    def convert_weights(weights: dict[str, torch.Tensor], target: dict[str, Any],
                        config: dict[str, Any], src: Path) -> dict[str, torch.Tensor]:
        return convert_state_dict(weights, target, len(config["downsampling_ratios"]), src)
