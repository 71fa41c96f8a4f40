"""Streaming ONNX graphs of a causal SEANet codec (``audio-core export --format
onnx-streaming``, exporter ``soundstream.onnx_streaming``).

The carried context of :mod:`audio_plugin_soundstream.streaming` becomes explicit graph
inputs and outputs, so a runtime without PyTorch streams chunk by chunk::

    OUT/encoder_step.onnx  chunk float32 (batch, channels, hops * hop_length),
                           state_0..state_{S-1}
                           -> codes int64 (batch, num_codebooks, hops), new_state_0..
    OUT/decoder_step.onnx  codes int64 (batch, n, frames), state_0..state_{T-1}
                           -> audio float32 (batch, channels, frames * hop_length), new_state_0..
    OUT/onnx_streaming.json  names and shapes of every state (``batch`` first; initial
                           value: zeros), hop, codebooks, and the onnxruntime check

Feed each ``new_state_i`` back as ``state_i`` of the next call. Chunks must hold whole hops
(the PyTorch :class:`~audio_plugin_soundstream.streaming.StreamingCodec` also buffers
partial hops; here the caller does). The states are each causal conv's last input samples,
each transposed conv's overlap tail and each LSTM's ``(h, c)``; the concatenated outputs
equal the offline model's on the whole-hop signal. Weight norm is folded first.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from audio_plugin_soundstream.causal import CausalLSTM, stream_apply
from audio_plugin_soundstream.seanet import SEANetDecoder, SEANetEncoder
from audio_plugin_soundstream.streaming import StreamingState


def _discover(run: Any, example: Tensor) -> list[tuple[nn.Module, list[torch.Size]]]:
    """Stateful layers in the order they store state, with their state shapes."""
    state = StreamingState()
    run(example, state)
    layers = []
    for layer, value in state._buffers.values():
        parts = list(value) if isinstance(layer, CausalLSTM) else [value]
        layers.append((layer, [p.shape for p in parts]))
    return layers


class StepGraph(nn.Module):
    """``(x, *states) -> (y, *new_states)`` around ``run(x, state)`` (a ``stream`` call)."""

    def __init__(self, owner: nn.Module, run: Any,
                 layers: list[tuple[nn.Module, list[torch.Size]]]) -> None:
        super().__init__()
        self.owner, self.run, self.layers = owner, run, layers

    def forward(self, x: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        state, it = StreamingState(), iter(states)
        for layer, shapes in self.layers:
            parts = [next(it) for _ in shapes]
            state[layer] = tuple(parts) if isinstance(layer, CausalLSTM) else parts[0]
        y = self.run(x, state)
        out = []
        for layer, _ in self.layers:
            value = state.get(layer)
            out += [v.contiguous() for v in value] if isinstance(layer, CausalLSTM) \
                else [value.contiguous()]
        return (y, *out)


def _zeros(layers: list, batch: int) -> list[Tensor]:
    """Initial states for ``batch`` signals (LSTM states are ``(layers, batch, dim)``)."""
    out = []
    for layer, shapes in layers:
        for shape in shapes:
            s = list(shape)
            s[1 if isinstance(layer, CausalLSTM) else 0] = batch
            out.append(torch.zeros(s))
    return out


def _graphs(model: nn.Module) -> tuple[StepGraph, StepGraph, list, list]:
    from audio_core.engine.onnx_export import CodeLookup

    enc, dec, q = model.encoder, model.decoder, model.quantizer
    lookup = CodeLookup(q.code_tables())

    def encode(x: Tensor, state: StreamingState) -> Tensor:
        return q.encode(stream_apply(enc.net, x, state).contiguous())

    def decode(codes: Tensor, state: StreamingState) -> Tensor:
        return dec.stream(lookup(codes), state)

    chunk = torch.zeros(1, enc.channels, enc.hop_length)
    enc_layers = _discover(encode, chunk)
    dec_layers = _discover(decode, torch.zeros(1, q.num_codebooks, 1, dtype=torch.long))
    return StepGraph(enc, encode, enc_layers), StepGraph(dec, decode, dec_layers), \
        enc_layers, dec_layers


def export_step_graph(graph: nn.Module, layers: list, x: Tensor, path: Path,
                      names: tuple[str, str], axes: dict[int, str]) -> list[dict[str, Any]]:
    """Export ``graph`` ``(x, *states) -> (y, *new_states)`` to ``path``: inputs ``names[0]``
    and ``state_i``, outputs ``names[1]`` and ``new_state_i`` (``axes`` dynamic on ``x``
    and ``y``, the batch axis on the states); ``layers``: ``(layer, [state shapes])`` in
    order. Returns each state's name, shape and batch axis (for the json)."""
    states = _zeros(layers, x.shape[0])
    state_names = [f"state_{i}" for i in range(len(states))]
    new_names = [f"new_{n}" for n in state_names]
    dynamic = {names[0]: axes, names[1]: axes}
    owners = [layer for layer, shapes in layers for _ in shapes]  # one per state tensor
    for i, layer in enumerate(owners):
        batch_axis = {1 if isinstance(layer, CausalLSTM) else 0: "batch"}
        dynamic[state_names[i]] = dynamic[new_names[i]] = batch_axis
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (x, *states), str(path), input_names=[names[0], *state_names],
                          output_names=[names[1], *new_names], opset_version=17,
                          dynamo=False, dynamic_axes=dynamic)
    return [{"name": n, "shape": list(s.shape), "batch_axis": next(iter(dynamic[n]))}
            for n, s in zip(state_names, states, strict=True)]


class StreamingOnnxExporter:
    """Exporter of format ``onnx-streaming`` for causal SEANet + RVQ codecs."""

    format = "onnx-streaming"

    @staticmethod
    def accepts(model: nn.Module) -> bool:
        """Causal SEANet pair + a quantizer with ``code_tables``; not the energy
        transformer (its attention cache grows with the stream: no fixed-shape state)."""
        from audio_plugin_soundstream.energy import EnergyTransformer

        if any(isinstance(m, EnergyTransformer) for m in model.modules()):
            return False
        return (isinstance(getattr(model, "encoder", None), SEANetEncoder)
                and isinstance(getattr(model, "decoder", None), SEANetDecoder)
                and callable(getattr(getattr(model, "quantizer", None), "code_tables", None)))

    @staticmethod
    def export(model: nn.Module, out: Path, chunk_hops: int = 4) -> Path:
        from audio_core.engine.onnx_export import fold_weight_norm

        model = fold_weight_norm(model.float().cpu().eval())
        out.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            encoder, decoder, enc_layers, dec_layers = _graphs(model)
            hop, n = model.encoder.hop_length, model.quantizer.num_codebooks
            chunk = 0.1 * torch.randn(1, model.encoder.channels, chunk_hops * hop)
            enc_states = export_step_graph(encoder, enc_layers, chunk,
                                           out / "encoder_step.onnx", ("chunk", "codes"),
                                           {0: "batch", 2: "length"})
            codes = torch.zeros(1, n, chunk_hops, dtype=torch.long)
            dec_states = export_step_graph(decoder, dec_layers, codes,
                                           out / "decoder_step.onnx", ("codes", "audio"),
                                           {0: "batch", 1: "codebooks", 2: "frames"})
        info = {"sample_rate": model.sample_rate, "channels": model.channels,
                "hop_length": hop, "num_codebooks": n, "encoder_states": enc_states,
                "decoder_states": dec_states}
        (out / "onnx_streaming.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        return out
