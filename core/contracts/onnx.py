"""What a model hands ``audio-core export --format onnx`` when the default graphs (encoder
``model.encode``/``encode_codes``, decoder ``model.decoder`` after a code-table lookup) do
not describe it: a tokenizer whose codes decode through its own maths, a vocoder that
needs its initial phases, a sampling decoder that needs its noise.

A model implements :class:`OnnxExportable` (``onnx_graphs()``) to give its own graphs; the
exporter traces them, runs them with onnxruntime and records ``info`` in ``onnx.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

#: Dynamic axes of a graph input: axis -> name (batch and length axes).
Axes = dict[int, str]


@dataclass
class OnnxGraphs:
    """A model's two graphs for ONNX export.

    Attributes:
        encoder: ``waveform (batch, channels, time)`` -> ``middle`` (int64 codes or a float
            latent); its length must be computed with tensor ops (traceable).
        decoder: ``(middle, *extra)`` -> waveform ``(batch, channels, time)``.
        middle: the name of the encoder output / first decoder input (``codes``,
            ``latent``) and its dynamic axes.
        extra: the decoder's other inputs, in order: name -> dynamic axes.
        make_extra: ``(middle, generator) -> {name: tensor}``, a value of every ``extra``
            input for that ``middle`` (what the model draws itself in PyTorch: noise,
            initial phases), used to trace and check the graph.
        info: what ``onnx.json`` records besides the exporter's own keys (e.g.
            ``decoder: {inputs: [...], steps: N}``).
    """

    encoder: nn.Module
    decoder: nn.Module
    middle: str
    middle_axes: Axes
    extra: dict[str, Axes] = field(default_factory=dict)
    make_extra: Callable[[Tensor, torch.Generator], dict[str, Tensor]] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class OnnxExportable(Protocol):
    """A model with its own ONNX graphs (see :class:`OnnxGraphs`)."""

    def onnx_graphs(self) -> OnnxGraphs:
        """The model's encoder and decoder graphs (modules sharing its weights)."""
        ...
