"""Where and in which precision inference runs: ``--device`` and ``--dtype`` of the
inference commands (reconstruct, encode, decode, generate).

``--device`` is ``cpu`` (default), ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (CUDA when
present, else CPU); an unavailable device is an error naming the flag. ``--dtype`` is
``fp32`` (default), ``bf16`` or ``fp16``: the weights stay fp32 and the model runs under
``torch.autocast`` in that dtype (matmuls and convolutions in half precision, reductions
and spectral maths in fp32; frozen parts and the written audio stay fp32). ``fp16`` needs a
CUDA device (CPU autocast is bf16).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from audio_core.errors import AudioCoreError

if TYPE_CHECKING:  # the CLI imports this module to build its parser: no torch at start-up
    import torch
    from torch import nn

#: ``--dtype`` names and the torch dtype attribute of each
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class PlacementError(AudioCoreError, ValueError):
    """A device or dtype that this machine or model cannot run."""


def add_placement_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="cpu (default), cuda, cuda:N, mps or auto (CUDA when present)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="fp32",
                   help="fp32 (default); bf16/fp16: run under autocast in that precision "
                        "(fp16 on CUDA only)")


def resolve_device(name: str) -> torch.device:
    """The ``torch.device`` for ``--device name``; :class:`PlacementError` when it is not
    a device name or not available here."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise PlacementError(f"--device {name!r} is not a device (expected cpu, cuda, "
                             f"cuda:N, mps or auto)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise PlacementError(f"--device {name}: CUDA is not available in this torch "
                                 f"({torch.__version__}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise PlacementError(f"--device {name}: only {torch.cuda.device_count()} CUDA "
                                 f"device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise PlacementError(f"--device {name}: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise PlacementError(f"--device {name}: expected cpu, cuda, cuda:N, mps or auto")
    return device


def check_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype not in DTYPES:
        raise PlacementError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if dtype == "fp16" and device.type != "cuda":
        raise PlacementError(f"--dtype fp16 needs a CUDA device (got --device {device}); "
                             f"use --dtype bf16 or fp32 on {device.type}")
    import torch

    return getattr(torch, DTYPES[dtype])


@contextlib.contextmanager
def precision(model: nn.Module, dtype: str) -> Iterator[None]:
    """Autocast in ``dtype`` on ``model``'s device (nothing for fp32)."""
    if dtype == "fp32":
        yield
        return
    import torch

    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    with torch.autocast(device.type, dtype=check_dtype(dtype, device)):
        yield
