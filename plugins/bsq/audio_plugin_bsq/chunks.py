"""Chunk and token layouts of the tokenizer as plain reshapes, with sizes computed by integer
arithmetic only: the same code runs eagerly (Python ints) and in a graph traced for ONNX
export (size tensors), where ``math.ceil`` or a Python ``if`` on a size would become a
constant and the graph would not be length-dynamic.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor


def ceil_div(a: Any, b: int) -> Any:
    """``ceil(a / b)`` for ``a >= 0`` (an int, or a size tensor when traced)."""
    return (a + b - 1) // b


def chunk_steps(steps: Any, chunk: int) -> tuple[Any, Any]:
    """``(padded steps, chunks)`` for ``steps`` time steps and chunks of ``chunk`` steps: one
    chunk of ``steps`` when ``steps <= chunk``, else ``ceil(steps / chunk)`` whole chunks."""
    chunks = ceil_div(steps, chunk)
    if isinstance(chunks, int):
        chunks = max(1, chunks)
    return steps + (chunks > 1) * (chunks * chunk - steps), chunks


def split_chunks(x: Tensor, chunks: Any) -> Tensor:
    """``(b, d, c * t)`` -> ``(b * c, d, t)`` (``einops``: ``b d (c t) -> (b c) d t``)."""
    b, d, n = x.shape
    return x.reshape(b, d, chunks, n // chunks).transpose(1, 2).reshape(-1, d, n // chunks)


def join_chunks(x: Tensor, chunks: Any) -> Tensor:
    """``(b * c, d, t)`` -> ``(b, d, c * t)``; inverse of :func:`split_chunks`."""
    bc, d, t = x.shape
    return x.reshape(bc // chunks, chunks, d, t).transpose(1, 2).reshape(bc // chunks, d, -1)


def tokens_to_grid(tokens: Tensor, freq: int) -> Tensor:
    """Codes ``(b, k, steps * freq)`` (time-major tokens) -> ``(b, freq * k, steps)``."""
    b, k, n = tokens.shape
    return tokens.reshape(b, k, n // freq, freq).permute(0, 3, 1, 2).reshape(b, freq * k, -1)


def grid_to_tokens(codes: Tensor, freq: int) -> Tensor:
    """Codes ``(b, freq * k, steps)`` -> ``(b, k, steps * freq)``; inverse of
    :func:`tokens_to_grid`."""
    b, rows, t = codes.shape
    return codes.reshape(b, freq, rows // freq, t).permute(0, 2, 3, 1).reshape(b, rows // freq, -1)
