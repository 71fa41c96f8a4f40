"""Chunk-by-chunk inference of the causal EnCodec-layout networks (the 24 kHz EnCodec).

:func:`stream_net` runs an ``nn.Sequential`` of EnCodec layers (``ELU``,
:class:`~audio_plugin_soundstream.encodec_layers.PaddedConv1d`,
:class:`~audio_plugin_soundstream.encodec_layers.PaddedConvTranspose1d`,
:class:`~audio_plugin_soundstream.encodec_layers.EncodecResidualUnit`,
:class:`~audio_plugin_soundstream.causal.CausalLSTM`) on one chunk ``(batch, channels,
n)`` of a stream, any ``n`` (0 too), keeping each layer's context in a
:class:`~audio_plugin_soundstream.streaming.StreamingState` keyed by the layer. The
outputs, concatenated, equal the offline network on the whole stream to float rounding:

- a convolution (kernel ``k``, stride ``s``, left padding ``p = k - s``) keeps its input,
  left-padded, from the first sample of its next window on. EnCodec pads the left edge by
  REFLECTING samples ``1 .. p`` of the input, so a layer emits nothing until it holds
  ``p + 1`` samples (a start-up delay of a few samples per layer), then every whole window
  (zero padding starts at once). At the end of the stream (``final=True``) its last partial
  window is padded on the right as offline (the reflection of its last samples, or zeros),
  and a layer that never started runs offline on all it holds (short streams are exact);
- a transposed convolution keeps the bias-free overlapping tail (``k - s`` samples) of its
  last frames; it drops its first ``left`` samples (EnCodec's trim) and gives them back,
  from the tail, at the end of the stream;
- a residual unit keeps the inputs whose block output has not come yet (the block lags at
  the start), and adds their shortcut when it does;
- the LSTM carries ``(h, c)``; an ELU is pointwise.

The encoder's latent and the decoder's audio therefore lag a little at the start of a stream
and are completed by the end-of-stream call (``flush``). :func:`check_streamable` names
what does not stream: centred (non-causal) padding looks ahead, time group norm normalises
over the whole signal (EnCodec's 48 kHz layout has both).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.models.streaming import StreamingError
from audio_plugin_soundstream.causal import CausalLSTM
from audio_plugin_soundstream.encodec_layers import (
    EncodecResidualUnit,
    PaddedConv1d,
    PaddedConvTranspose1d,
    inference_weight,
    pad1d,
)
from audio_plugin_soundstream.streaming import StreamingState


def check_streamable(net: nn.Module, owner: str) -> None:
    """:class:`StreamingError` naming why ``net`` cannot stream, if it cannot."""
    reasons: list[str] = []
    for layer in net.modules():
        if isinstance(layer, PaddedConv1d | PaddedConvTranspose1d) and hasattr(layer, "norm"):
            reasons.append("time group norm (norm = 'time_group_norm') normalises each "
                           "layer over the whole signal")
        if isinstance(layer, PaddedConv1d) and not layer.causal:
            reasons.append("its convolutions are centred (causal = false, EnCodec's "
                           "use_causal_conv) and look ahead")
        if isinstance(layer, PaddedConv1d) and layer.padding_total < layer.stride - 1:
            reasons.append(f"a convolution's kernel ({layer.effective}) is shorter than "
                           f"2 * stride - 1 ({2 * layer.stride - 1})")
    if reasons:
        raise StreamingError(f"{owner} does not stream: {'; '.join(dict.fromkeys(reasons))}; "
                             f"code the whole signal (encode_codes / decode_codes) instead")


def _empty(ref: Tensor, channels: int) -> Tensor:
    return ref.new_zeros(ref.shape[0], channels, 0)


def stream_conv(layer: PaddedConv1d, x: Tensor, state: StreamingState, final: bool) -> Tensor:
    """One chunk ``(batch, in, n)`` -> the output frames ``(batch, out, m)`` it completes
    (all that remain when ``final``). State: ``(left-padded input from the next window on,
    started)``; before the start, the unpadded input so far."""
    p, s, out = layer.padding_total, layer.stride, layer.conv.out_channels
    held, started = state.get(layer, lambda: (x[..., :0], False))
    buf = torch.cat([held, x], dim=-1)
    if not started:
        if final:  # a stream too short to start: the offline layer on all of it
            state[layer] = (buf[..., :0], False)
            return layer(buf) if buf.shape[-1] else _empty(buf, out)
        if layer.pad_mode == "reflect" and buf.shape[-1] <= p:  # reflection needs p + 1
            state[layer] = (buf, False)
            return _empty(buf, out)
        buf = pad1d(buf, p, 0, layer.pad_mode)
    if final and (right := -(buf.shape[-1] - p) % s):  # offline's right "extra" padding
        tail = buf[..., -right - 1:-1].flip(-1) if layer.pad_mode == "reflect" \
            else buf.new_zeros(*buf.shape[:-1], right)
        buf = torch.cat([buf, tail], dim=-1)
    frames = (buf.shape[-1] - p) // s
    state[layer] = (buf[..., frames * s:], True)
    return layer.convolve(buf[..., : frames * s + p]) if frames else _empty(buf, out)


def stream_transposed(layer: PaddedConvTranspose1d, x: Tensor, state: StreamingState,
                      final: bool) -> Tensor:
    """Frames ``(batch, in, n)`` -> ``(batch, out, m)`` samples: ``n * stride`` once the
    first ``left`` are dropped; the last ``left`` when ``final``. State: ``(bias-free
    overlapping tail, samples still to drop)``."""
    c = layer.conv
    s, overlap = c.stride[0], c.kernel_size[0] - c.stride[0]
    tail, skip = state.get(layer, lambda: (x.new_zeros(x.shape[0], c.out_channels, overlap),
                                           layer.left))
    done = tail[..., :0]
    if x.shape[-1]:
        weight = inference_weight(c)
        y = F.conv_transpose1d(x, c.weight if weight is None else weight, None, s)
        y = torch.cat([y[..., :overlap] + tail, y[..., overlap:]], dim=-1)
        done, tail = y[..., : x.shape[-1] * s], y[..., x.shape[-1] * s:]
    if final:
        done = torch.cat([done, tail[..., : overlap - layer.right]], dim=-1)
    drop = min(skip, done.shape[-1])
    state[layer] = (tail, skip - drop)
    done = done[..., drop:]
    return done if c.bias is None else done + c.bias[:, None]


def stream_residual(unit: EncodecResidualUnit, x: Tensor, state: StreamingState,
                    final: bool) -> Tensor:
    """``shortcut(x) + block(x)`` chunk by chunk: the shortcut waits for the block."""
    y = stream_net(unit.block, x, state, final)
    pending = torch.cat([state.get(unit, lambda: x[..., :0]), x], dim=-1)
    n = y.shape[-1]
    state[unit] = pending[..., n:]
    return unit.shortcut(pending[..., :n]) + y if n else y


def stream_net(net: nn.Sequential, x: Tensor, state: StreamingState, final: bool) -> Tensor:
    """``net`` on one chunk ``x`` ``(batch, channels, n)`` of a stream -> ``(batch,
    channels', m)``, what its layers complete (module docstring); ``final``: the end of
    the stream, everything that remains."""
    for layer in net:
        if isinstance(layer, PaddedConv1d):
            x = stream_conv(layer, x, state, final)
        elif isinstance(layer, PaddedConvTranspose1d):
            x = stream_transposed(layer, x, state, final)
        elif isinstance(layer, EncodecResidualUnit):
            x = stream_residual(layer, x, state, final)
        elif isinstance(layer, CausalLSTM):
            x = layer.stream(x, state) if x.shape[-1] else x
        elif isinstance(layer, nn.ELU):
            x = layer(x)
        else:
            raise StreamingError(f"{type(layer).__name__} in an EnCodec-layout network has "
                                 f"no streaming form")
    return x
