"""Integer codes <-> bits. Bit ``j`` of a code is dimension ``j`` of its group (little-endian).

``bits`` per token are split into integer codes of ``bits_per_code`` bits (at most 62, so
codes stay non-negative int64); the last code may hold fewer bits.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor

MAX_BITS_PER_CODE = 62


def num_codes(bits: int, bits_per_code: int) -> int:
    """Integer codes per token."""
    return math.ceil(bits / bits_per_code)


def check_bits_per_code(bits: int, bits_per_code: int | None) -> int:
    """``bits_per_code`` (default ``min(bits, 62)``), validated."""
    per = min(bits, MAX_BITS_PER_CODE) if bits_per_code is None else int(bits_per_code)
    if not 1 <= per <= MAX_BITS_PER_CODE:
        raise ValueError(f"bits_per_code must be in 1..{MAX_BITS_PER_CODE}, got {per}")
    return per


def bits_to_codes(bits: Tensor, bits_per_code: int) -> Tensor:
    """Bits ``(..., d)`` (bool or 0/1) -> codes ``(..., ceil(d / bits_per_code))`` int64."""
    d = bits.shape[-1]
    k = num_codes(d, bits_per_code)
    padded = torch.nn.functional.pad(bits.long(), (0, k * bits_per_code - d))
    grouped = rearrange(padded, "... (k b) -> ... k b", b=bits_per_code)
    weights = 1 << torch.arange(bits_per_code, device=bits.device, dtype=torch.int64)
    return (grouped * weights).sum(-1)


def codes_to_bits(codes: Tensor, bits: int, bits_per_code: int) -> Tensor:
    """Codes ``(..., k)`` int64 -> bits ``(..., bits)`` bool; inverse of :func:`bits_to_codes`."""
    if codes.shape[-1] != num_codes(bits, bits_per_code):
        raise ValueError(f"expected {num_codes(bits, bits_per_code)} codes per token for "
                         f"{bits} bits, got {codes.shape[-1]}")
    shifts = torch.arange(bits_per_code, device=codes.device, dtype=torch.int64)
    unpacked = (codes.long().unsqueeze(-1) // (1 << shifts)) % 2  # ONNX: no signed shifts
    return rearrange(unpacked, "... k b -> ... (k b)")[..., :bits].bool()
