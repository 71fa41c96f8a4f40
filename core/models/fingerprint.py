"""A model's identity: the fingerprint token files, latents, stage-2 models and exports
record, so nothing is decoded or trained against the wrong weights."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

INFERENCE_SLOTS = ("encoder", "quantizer", "decoder", "vocoder", "denoiser", "conditioner",
                   "objective", "sampler")


def model_fingerprint(model: nn.Module) -> str:
    """A stable 16-hex-digit identity of a model: SHA-256 over its class, the config it was
    built from (``model.config``, when present: ``model.type``, ``model.params``, every
    inference component ref, sample rate, channels; not losses or discriminators) and every
    state-dict entry's name, shape, dtype and bytes."""
    digest = hashlib.sha256(b"audio-core model fingerprint v2\n")
    arch: dict[str, Any] = {"class": f"{type(model).__module__}.{type(model).__qualname__}"}
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "model"):
        arch.update({key: _ref(getattr(cfg.model, key, None)) for key in INFERENCE_SLOTS})
        named = getattr(cfg.model, "conditioners", None)
        if named:  # only when set: fingerprints of single-conditioner models are unchanged
            arch["conditioners"] = {n: {**_ref(r), "key": _plain(r.key)}
                                    for n, r in named.items()}
        arch.update(type=getattr(cfg.model, "type", None),
                    params=_plain(getattr(cfg.model, "params", {}) or {}))
        arch.update(sample_rate=cfg.data.sample_rate, channels=cfg.data.channels)
    digest.update(json.dumps(arch, sort_keys=True, default=str).encode("utf-8"))
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"\n{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        digest.update(t.view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def _ref(ref: Any) -> Any:
    if ref is None:
        return None
    return {"name": ref.name, "params": _plain(ref.params)}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
