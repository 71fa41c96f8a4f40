"""Inference path of the EnCodec-layout networks on time-major activations.

:func:`run_time_major` runs an ``nn.Sequential`` of EnCodec layers (``ELU``,
:class:`~audio_plugin_soundstream.encodec_layers.PaddedConv1d`,
:class:`~audio_plugin_soundstream.encodec_layers.PaddedConvTranspose1d`,
:class:`~audio_plugin_soundstream.encodec_layers.EncodecResidualUnit`,
:class:`~audio_plugin_soundstream.causal.CausalLSTM`) with the same parameters and the same
maths as calling it, but with activations held as ``(batch, time, channels)`` tensors:

- an ``ELU`` followed by a padded convolution writes its output straight into the padded
  buffer (no separate activation and padding copies); the reflection is filled in place;
- a convolution runs as a channels-last 2-D oneDNN convolution on a view of that buffer
  (no reorder of input or output); a 1x1 convolution is one matrix product, and a residual
  unit adds its 1x1 output onto its shortcut in place;
- a transposed convolution whose kernel is a whole number of strides (``2 * stride`` in
  EnCodec) is a sum of matrix products over frames, each giving ``stride`` output samples
  per frame, instead of oneDNN's transposed convolution;
- the LSTM reads ``(batch, time, channels)`` directly.

On 2 CPU threads this makes full-size EnCodec 24 kHz encode + decode about 1.5x faster
than the module path (real-time factor 0.074 -> 0.047; ``benchmarks/onnx_vs_torch.py``,
docs/benchmarks.md). Results equal the module path to float
rounding (summation order), not bit for bit. A layer the path does not know runs through
its own module on a channel-major copy. :func:`applies` says when the path is used:
inference only (autograd off), no autocast, not tracing, weights not partitioned by ZeRO-3.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from audio_plugin_soundstream.causal import CausalLSTM
from audio_plugin_soundstream.encodec_layers import (
    EncodecResidualUnit,
    PaddedConv1d,
    PaddedConvTranspose1d,
    inference_weight,
)


def conv_weight(conv: nn.Conv1d | nn.ConvTranspose1d) -> Tensor | None:
    """``conv``'s weight as used at inference (weight norm applied, cached); ``None`` when
    it is partitioned by ZeRO-3 (only the module's own forward gathers it)."""
    if parametrize.is_parametrized(conv, "weight"):
        return inference_weight(conv)
    return None if hasattr(conv.weight, "ds_id") else conv.weight


def applies(net: nn.Sequential, x: Tensor) -> bool:
    """Whether :func:`run_time_major` may run ``net`` on ``x``: autograd and autocast off, not
    tracing (an export traces the module path, whose sizes follow the input), every
    convolution's weight at hand."""
    if (torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type)
            or torch.jit.is_tracing()
            or torch.onnx.is_in_onnx_export()):
        return False
    convs = [m for m in net.modules() if isinstance(m, nn.Conv1d | nn.ConvTranspose1d)]
    return all(conv_weight(c) is not None for c in convs)


def _cached(conv: nn.Module, name: str, weight: Tensor, make) -> Tensor:
    """A tensor derived from ``weight`` by ``make``, kept on ``conv`` while ``weight`` is
    the same tensor (:func:`inference_weight` returns a new one when parameters change)."""
    slot = conv.__dict__.get(name)
    if slot is None or slot[0] is not weight:
        slot = (weight, make(weight))
        conv.__dict__[name] = slot
    return slot[1]


def _channel_major(module: nn.Module, h: Tensor) -> Tensor:
    """Any layer through its own forward: ``(batch, time, channels)`` in and out."""
    return module(h.transpose(1, 2)).transpose(1, 2).contiguous()


def _post_norm(layer: nn.Module, y: Tensor) -> Tensor:
    """``layer``'s time group norm (if it has one) on time-major ``y``."""
    if not hasattr(layer, "norm"):
        return y
    norm = cast(nn.GroupNorm, layer.norm)
    return norm(y.transpose(1, 2)).transpose(1, 2).contiguous()


def padded_conv(layer: PaddedConv1d, h: Tensor, alpha: float | None) -> Tensor:
    """``layer(elu(h))`` (``alpha`` set) or ``layer(h)``, time-major ``(batch, time, in)`` ->
    ``(batch, ceil(time / stride), out)``."""
    conv, weight = layer.conv, conv_weight(layer.conv)
    assert weight is not None  # applies() checked it
    batch, time, channels = h.shape
    right = 0 if layer.causal else layer.padding_total // 2
    left, right = layer.padding_total - right, right + layer.extra_padding(time)
    if weight.shape[-1] == 1 and layer.stride == 1:  # 1x1: one matrix product
        x = F.elu(h, alpha) if alpha is not None else h
        return _post_norm(layer, F.linear(x, weight[:, :, 0], conv.bias))
    if layer.pad_mode == "reflect" and max(left, right) >= time:  # reflection of zeros
        x = F.elu(h, alpha) if alpha is not None else h
        return _channel_major(layer, x)
    padded = h.new_empty(batch, left + time + right, channels)
    middle = padded[:, left:left + time]
    if alpha is not None:
        middle.copy_(h)
        F.elu_(middle, alpha)
    else:
        middle.copy_(h)
    if layer.pad_mode == "reflect":
        if left:
            padded[:, :left] = padded[:, left + 1:2 * left + 1].flip(1)
        if right:
            end = left + time
            padded[:, end:] = padded[:, end - right - 1:end - 1].flip(1)
    else:
        padded[:, :left] = 0
        padded[:, left + time:] = 0
    kernel = _cached(conv, "_kernel_2d", weight,
                     lambda w: w.unsqueeze(2).contiguous(memory_format=torch.channels_last))
    y = F.conv2d(padded.transpose(1, 2).unsqueeze(2), kernel, conv.bias,
                 stride=(1, layer.stride), dilation=(1, conv.dilation[0]))
    return _post_norm(layer, y.squeeze(2).transpose(1, 2).contiguous())


def _tap_kernels(weight: Tensor, stride: int) -> Tensor:
    """A transposed conv weight ``(in, out, taps * stride)`` -> ``(taps, stride * out,
    in)``: tap ``j`` maps input frame ``f - j`` to output samples ``f * stride ..``."""
    cin, cout, k = weight.shape
    return weight.view(cin, cout, k // stride, stride).permute(2, 3, 1, 0) \
        .reshape(k // stride, stride * cout, cin).contiguous()


def transposed_conv(layer: PaddedConvTranspose1d, h: Tensor, alpha: float | None) -> Tensor:
    """``layer(elu(h))`` (``alpha`` set) or ``layer(h)``: time-major ``(batch, frames, in)``
    -> ``(batch, frames * stride, out)``, as a sum over kernel taps of matrix products."""
    conv, weight = layer.conv, conv_weight(layer.conv)
    assert weight is not None
    stride, (cin, cout, k) = conv.stride[0], weight.shape
    if k % stride:
        x = F.elu(h, alpha) if alpha is not None else h
        return _channel_major(layer, x)
    taps, (batch, frames, _) = k // stride, h.shape
    # frames padded by taps - 1 zero frames on both sides: output frame f reads f - j
    padded = h.new_zeros(batch, frames + 2 * (taps - 1), cin)
    middle = padded[:, taps - 1:taps - 1 + frames]
    middle.copy_(h)
    if alpha is not None:
        F.elu_(middle, alpha)
    kernels = _cached(conv, "_tap_kernels", weight, lambda w: _tap_kernels(w, stride))
    out_frames = frames + taps - 1
    bias = None if conv.bias is None else conv.bias.repeat(stride)
    y = F.linear(padded[:, taps - 1:taps - 1 + out_frames], kernels[0], bias)
    flat = y.view(batch * out_frames, stride * cout)
    for j in range(1, taps):
        start = taps - 1 - j
        flat.addmm_(padded[:, start:start + out_frames].reshape(-1, cin), kernels[j].t())
    y = _post_norm(layer, y.view(batch, out_frames * stride, cout))
    return y[:, layer.left:y.shape[1] - layer.right].contiguous()


def residual_unit(unit: EncodecResidualUnit, h: Tensor) -> Tensor:
    """``shortcut(h) + conv_1(elu(conv_k(elu(h))))``, time-major; the 1x1 product is added
    onto the shortcut in place."""
    first_elu, conv_k, second_elu, conv_1 = unit.block
    if (hasattr(conv_1, "norm") or not isinstance(conv_k, PaddedConv1d)
            or not isinstance(conv_1, PaddedConv1d) or conv_1.conv.kernel_size[0] != 1):
        return _channel_major(unit, h)
    hidden = padded_conv(conv_k, h, cast(nn.ELU, first_elu).alpha)
    F.elu_(hidden, cast(nn.ELU, second_elu).alpha)
    weight = conv_weight(conv_1.conv)
    assert weight is not None
    if isinstance(unit.shortcut, PaddedConv1d):
        out = padded_conv(unit.shortcut, h, None)
    else:
        out = h.clone()
    if conv_1.conv.bias is not None:
        out += conv_1.conv.bias
    batch, time, width = out.shape
    out.view(batch * time, width).addmm_(hidden.reshape(batch * time, -1),
                                         weight[:, :, 0].t())
    return out


def run_time_major(net: nn.Sequential, x: Tensor) -> Tensor:
    """``net(x)`` for ``x`` ``(batch, channels, time)`` on time-major activations (module
    docstring); returns ``(batch, channels', time')``."""
    h = x.transpose(1, 2).contiguous()
    alpha: float | None = None  # a pending ELU, applied by the next layer
    for layer in net:
        if isinstance(layer, nn.ELU) and alpha is None:
            alpha = layer.alpha
            continue
        if isinstance(layer, PaddedConv1d):
            h = padded_conv(layer, h, alpha)
        elif isinstance(layer, PaddedConvTranspose1d):
            h = transposed_conv(layer, h, alpha)
        else:
            if alpha is not None:
                h = F.elu(h, alpha)
            if isinstance(layer, EncodecResidualUnit):
                h = residual_unit(layer, h)
            elif isinstance(layer, CausalLSTM):
                h = h + layer.lstm(h)[0]
            else:
                h = _channel_major(layer, h)
        alpha = None
    if alpha is not None:
        h = F.elu(h, alpha)
    return h.transpose(1, 2)
