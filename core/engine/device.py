"""Device choice and backend switches.

CUDA when present (device ``cuda:LOCAL_RANK``, NCCL: :mod:`audio_core.distributed`),
else CPU (gloo). :func:`configure_backends` applies the ``train`` keys that decide how CUDA
computes float32 maths on CUDA (CPU maths is left as it is):

* ``train.tf32`` (default true): ``torch.backends.cuda.matmul.allow_tf32`` and
  ``torch.backends.cudnn.allow_tf32``, i.e. float32 matmuls and convolutions on Ampere+
  tensor cores with a 10-bit mantissa (``torch.set_float32_matmul_precision("high")``);
  false keeps full float32 (``"highest"``). Under bf16/fp16 autocast most matmuls are
  already half precision; TF32 affects what stays float32.
* ``train.cudnn_benchmark`` (default true): ``torch.backends.cudnn.benchmark``, picks the
  fastest convolution algorithm per input shape (fixed-length crops: one search per shape).

Pinned host memory for the data loader and ``non_blocking`` host-to-device copies follow
from :func:`pin_memory` (true exactly when CUDA is used).
"""

from __future__ import annotations

import os
from typing import Any

import torch


def accelerator_device() -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def pin_memory() -> bool:
    """Whether loaders should pin host memory (CUDA is available)."""
    return torch.cuda.is_available()


def configure_backends(train: Any, device: torch.device | str | None = None) -> dict[str, Any]:
    """Apply ``train.tf32`` and ``train.cudnn_benchmark`` (a :class:`TrainConfig`) when
    ``device`` (default :func:`accelerator_device`) is CUDA; CPU maths is left untouched.
    Returns the device and the settings in force for it."""
    device = torch.device(device) if device is not None else accelerator_device()
    if device.type != "cuda":
        return {"device": str(device), "tf32": False, "cudnn_benchmark": False}
    tf32, benchmark = bool(train.tf32), bool(train.cudnn_benchmark)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = benchmark
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    return {"device": str(device), "tf32": tf32, "cudnn_benchmark": benchmark}
