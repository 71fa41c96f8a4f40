"""Streaming ONNX graphs of a causal EnCodec-layout codec (an imported 24 kHz EnCodec):
``audio-core export --format onnx-streaming``, exporter ``soundstream.encodec_onnx_streaming``.

The files, inputs and outputs are those of :mod:`audio_plugin_soundstream.onnx_streaming`
(``encoder_step.onnx``: chunk + states -> codes + new states; ``decoder_step.onnx``: codes
+ states -> audio + new states; ``onnx_streaming.json``): start from zeros, feed each
``new_state_i`` back as ``state_i``, chunks of whole hops. The states are each
convolution's last ``kernel - stride`` input samples, each transposed convolution's
overlap tail and each LSTM's ``(h, c)``; ``state_0`` of both graphs is a ``started`` flag
``(batch, 1, 1)``, 0 before the first call and 1 after it.

EnCodec pads each convolution's input on the left with the REFLECTION of that input's own
first samples, not zeros: on the first call (``started`` 0) every convolution pads that
way, later with the carried samples. So the first call must hold enough samples for
every layer's reflection: ``first_chunk_min_hops`` in ``onnx_streaming.json`` (7 for
EnCodec's layout: the encoder's last and the decoder's first convolution have kernel 7 at
the frame rate); later calls take any whole number of hops. The outputs equal the offline
model's on a signal of whole hops; a last partial hop is the caller's to pad (offline,
each strided layer reflects it, which zero padding to a hop does not reproduce exactly).
Weight norm is folded first; only causal, weight-normed networks whose transposed
convolutions trim on the right only (``trim_right_ratio`` 1) are accepted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.models.streaming import StreamingError
from audio_plugin_soundstream.causal import CausalLSTM
from audio_plugin_soundstream.encodec import EncodecDecoder, EncodecEncoder
from audio_plugin_soundstream.encodec_layers import (
    EncodecResidualUnit,
    PaddedConv1d,
    PaddedConvTranspose1d,
)
from audio_plugin_soundstream.encodec_streaming import check_streamable
from audio_plugin_soundstream.onnx_streaming import export_step_graph


class _States:
    """One step's flat state list: ``take`` reads the given states in order (``default()``
    when ``given`` is ``None``: discovering the shapes), ``put`` collects the new ones with
    the layer owning each."""

    def __init__(self, given: Sequence[Tensor] | None) -> None:
        self.given: Iterator[Tensor] | None = iter(given) if given is not None else None
        self.new: list[Tensor] = []
        self.owners: list[nn.Module] = []

    def take(self, default: Callable[[], Tensor]) -> Tensor:
        return next(self.given) if self.given is not None else default()

    def put(self, owner: nn.Module, value: Tensor) -> None:
        self.owners.append(owner)
        self.new.append(value.contiguous())


def _conv(layer: PaddedConv1d, x: Tensor, started: Tensor, states: _States) -> Tensor:
    """``(batch, in, n * stride)`` -> ``(batch, out, n)``; left context: the reflection of
    ``x``'s samples ``1 .. p`` before the start, the carried ``p`` samples after (both are
    computed, ``started`` picks; the reflection reads ``x`` zero-extended, as later chunks
    may be shorter than ``p + 1``)."""
    p = layer.padding_total
    if p:
        first = torch.zeros_like(x[..., :1]).expand(-1, -1, p)
        if layer.pad_mode == "reflect":  # zero-extended: later chunks may be shorter
            first = torch.cat([x, first], dim=-1).index_select(
                2, torch.arange(p, 0, -1, device=x.device))
        carried = states.take(lambda: x.new_zeros(x.shape[0], x.shape[1], p))
        x = torch.cat([torch.where(started > 0.5, carried, first), x], dim=-1)
        states.put(layer, x[..., -p:])
    return layer.convolve(x)


def _transposed(layer: PaddedConvTranspose1d, x: Tensor, states: _States) -> Tensor:
    """Frames ``(batch, in, n)`` -> ``(batch, out, n * stride)``, the overlap carried."""
    c = layer.conv
    overlap = c.kernel_size[0] - c.stride[0]
    y = F.conv_transpose1d(x, c.weight, None, c.stride[0])
    if overlap:
        tail = states.take(lambda: y.new_zeros(y.shape[0], y.shape[1], overlap))
        y = torch.cat([y[..., :overlap] + tail, y[..., overlap:]], dim=-1)
        states.put(layer, y[..., -overlap:])
        y = y[..., :-overlap]
    return y if c.bias is None else y + c.bias[:, None]


def _lstm(layer: CausalLSTM, x: Tensor, states: _States) -> Tensor:
    """``x + lstm(x)`` over frames ``(batch, dim, n)``, carrying ``h`` and ``c``."""
    lstm = layer.lstm
    shape = (lstm.num_layers, x.shape[0], lstm.hidden_size)
    h, c = states.take(lambda: x.new_zeros(shape)), states.take(lambda: x.new_zeros(shape))
    y, (h, c) = lstm(x.transpose(1, 2), (h, c))
    states.put(layer, h)
    states.put(layer, c)
    return x + y.transpose(1, 2)


def _net(net: nn.Sequential, x: Tensor, started: Tensor, states: _States) -> Tensor:
    """``net`` on one whole-hop chunk with explicit states (module docstring)."""
    for layer in net:
        if isinstance(layer, PaddedConv1d):
            x = _conv(layer, x, started, states)
        elif isinstance(layer, PaddedConvTranspose1d):
            x = _transposed(layer, x, states)
        elif isinstance(layer, EncodecResidualUnit):
            y = _net(layer.block, x, started, states)
            shortcut = layer.shortcut
            x = y + (_conv(shortcut, x, started, states)
                     if isinstance(shortcut, PaddedConv1d) else x)
        elif isinstance(layer, CausalLSTM):
            x = _lstm(layer, x, states)
        elif isinstance(layer, nn.ELU):
            x = layer(x)
        else:
            raise StreamingError(f"{type(layer).__name__} has no streaming ONNX form")
    return x


def first_chunk_min_hops(net: nn.Sequential, rate: float) -> int:
    """The fewest hops whose first chunk gives every reflect-padded convolution of ``net``
    its ``p + 1`` samples; ``rate``: samples per hop at ``net``'s input."""
    need = 1
    for layer in net.modules():  # registration order: the order the layers run in
        if isinstance(layer, PaddedConv1d):
            if layer.pad_mode == "reflect" and layer.padding_total:
                need = max(need, math.ceil((layer.padding_total + 1) / rate))
            rate /= layer.stride
        elif isinstance(layer, PaddedConvTranspose1d):
            rate *= layer.conv.stride[0]
    return need


class _Step(nn.Module):
    """``(x, started, *states) -> (y, ones, *new_states)`` around ``run(x)``."""

    def __init__(self, owner: nn.Module, net: nn.Sequential,
                 before: Callable[[Tensor], Tensor], after: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.owner, self.net, self.before, self.after = owner, net, before, after

    def run(self, x: Tensor, started: Tensor, given: Sequence[Tensor] | None
            ) -> tuple[Tensor, _States]:
        states = _States(given)
        y = self.after(_net(self.net, self.before(x), started, states))
        return y, states

    def forward(self, x: Tensor, started: Tensor, *given: Tensor) -> tuple[Tensor, ...]:
        y, states = self.run(x, started, given)
        return (y, torch.ones_like(started), *states.new)

    def layers(self, x: Tensor) -> list[tuple[nn.Module, list[torch.Size]]]:
        """``(owner, [shape])`` of ``started`` then of every state, for the export."""
        started = x.new_zeros(x.shape[0], 1, 1)
        _, states = self.run(x, started, None)
        return [(self.owner, [started.shape]),
                *((o, [s.shape]) for o, s in zip(states.owners, states.new, strict=True))]


class EncodecStreamingOnnxExporter:
    """Exporter of format ``onnx-streaming`` for causal EnCodec-layout codecs."""

    format = "onnx-streaming"

    @staticmethod
    def accepts(model: nn.Module) -> bool:
        """EnCodec-layout encoder and decoder that stream (causal, weight norm), transposed
        convolutions trimmed on the right only, no ``normalize``, a quantizer with
        ``code_tables``."""
        enc, dec = getattr(model, "encoder", None), getattr(model, "decoder", None)
        if not (isinstance(enc, EncodecEncoder) and isinstance(dec, EncodecDecoder)):
            return False
        try:
            check_streamable(enc.net, "encoder")
            check_streamable(dec.net, "decoder")
        except StreamingError:
            return False
        if any(isinstance(m, PaddedConvTranspose1d) and m.left for m in dec.modules()):
            return False
        return (not getattr(model, "normalize", False)
                and callable(getattr(getattr(model, "quantizer", None), "code_tables", None)))

    @staticmethod
    def export(model: nn.Module, out: Path, chunk_hops: int = 8) -> Path:
        from audio_core.engine.onnx_export import CodeLookup, fold_weight_norm

        model = fold_weight_norm(model.float().cpu().eval())
        enc, dec, q = model.encoder, model.decoder, model.quantizer
        hop, n = enc.hop_length, q.num_codebooks
        hops = max(chunk_hops, first_chunk_min_hops(enc.net, hop),
                   first_chunk_min_hops(dec.net, 1))
        lookup = CodeLookup(q.code_tables())
        encoder = _Step(enc, enc.net, lambda x: x, lambda z: q.encode(z))
        decoder = _Step(dec, dec.net, lookup, lambda y: y)
        out.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            chunk = 0.1 * torch.randn(1, enc.channels, hops * hop)
            codes = torch.zeros(1, n, hops, dtype=torch.long)
            enc_states = export_step_graph(encoder, encoder.layers(chunk), chunk,
                                           out / "encoder_step.onnx", ("chunk", "codes"),
                                           {0: "batch", 2: "length"})
            dec_states = export_step_graph(decoder, decoder.layers(codes), codes,
                                           out / "decoder_step.onnx", ("codes", "audio"),
                                           {0: "batch", 1: "codebooks", 2: "frames"})
        info: dict[str, Any] = {
            "sample_rate": model.sample_rate, "channels": model.channels, "hop_length": hop,
            "num_codebooks": n,
            "first_chunk_min_hops": max(first_chunk_min_hops(enc.net, hop),
                                        first_chunk_min_hops(dec.net, 1)),
            "encoder_states": enc_states, "decoder_states": dec_states}
        (out / "onnx_streaming.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        return out
