"""Convolutions with EnCodec's padding rules (the layout of published EnCodec weights).

Every layer maps ``(batch, channels, time)`` to ``(batch, channels', time')`` on the whole
input; causal weight-normed layers also run chunk by chunk through
:mod:`audio_plugin_soundstream.encodec_streaming` (time group norm looks at the whole input).

Padding rules (:class:`PaddedConv1d`): a conv of effective kernel ``k`` and stride ``s``
pads ``k - s`` samples in total, all on the left when ``causal``, else split with the
larger half on the left; then as many samples on the right as make the last window whole,
so ``time' = ceil(time / s)``. ``pad_mode`` is ``"reflect"`` (inputs shorter than the pad
are first zero-extended on the right so the reflection exists, and the extension is cut
again) or ``"constant"`` (zeros). :class:`PaddedConvTranspose1d` trims ``k - s`` samples
of the full transposed convolution: ``ceil((k - s) * trim_right_ratio)`` on the right when
``causal``, else ``(k - s) // 2`` on the right and the rest on the left, so ``time' = time
* s``. ``norm`` is ``"weight_norm"`` (a weight-norm parametrization of the conv weight),
``"time_group_norm"`` (one-group ``GroupNorm`` over channels and time after the conv) or
``"none"`` (a plain conv, as Mimi's SEANet).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

NORMS = ("weight_norm", "time_group_norm", "none")
PAD_MODES = ("reflect", "constant")


def _check(norm: str, pad_mode: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {list(NORMS)}, got {norm!r}")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {list(PAD_MODES)}, got {pad_mode!r}")


def inference_weight(conv: nn.Conv1d | nn.ConvTranspose1d) -> Tensor | None:
    """Outside autograd (inference), ``conv``'s weight-normed weight computed once and
    reused until its parameters change (their version counters, storage, device and dtype
    are the cache key) instead of on every call: the same values. ``None`` (call the module
    itself) with autograd on, without weight norm, or with ZeRO-3 partitioned parameters
    (their gathering hooks run in the module's own forward)."""
    if torch.is_grad_enabled() or not parametrize.is_parametrized(conv, "weight"):
        return None
    weight = conv.parametrizations.weight
    parts = (weight.original0, weight.original1)
    if any(hasattr(p, "ds_id") for p in parts):
        return None
    key = tuple((p._version, p.data_ptr(), p.dtype, p.device) for p in parts)
    cached = conv.__dict__.get("_inference_weight")
    if cached is None or cached[0] != key:
        cached = (key, conv.weight.detach())
        conv.__dict__["_inference_weight"] = cached
    return cached[1]


def pad1d(x: Tensor, left: int, right: int, mode: str) -> Tensor:
    """``x`` ``(batch, channels, time)`` padded to ``time + left + right``; reflection of
    an input no longer than the pad reflects a zero-extended copy (then cut back)."""
    if left == right == 0:  # 1x1 convolutions: no copy
        return x
    if mode != "reflect":
        return F.pad(x, (left, right))
    extra = max(0, max(left, right) - x.shape[-1] + 1)
    if extra:
        x = F.pad(x, (0, extra))
    y = F.pad(x, (left, right), mode="reflect")
    return y[..., : y.shape[-1] - extra]


class PaddedConv1d(nn.Module):
    """Conv1d ``(batch, in, time)`` -> ``(batch, out, ceil(time / stride))`` with EnCodec's
    padding (module docstring). Holds ``conv`` (the ``nn.Conv1d``) and, for
    ``time_group_norm``, ``norm``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, *, causal: bool = True, pad_mode: str = "reflect",
                 norm: str = "weight_norm") -> None:
        super().__init__()
        _check(norm, pad_mode)
        self.causal, self.pad_mode, self.stride = causal, pad_mode, stride
        self.effective = (kernel_size - 1) * dilation + 1
        self.padding_total = self.effective - stride
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation)
        self.conv = weight_norm(conv) if norm == "weight_norm" else conv
        if norm == "time_group_norm":
            self.norm = nn.GroupNorm(1, out_channels)

    def extra_padding(self, length: int) -> int:
        """Right padding that makes the last window of ``length`` samples whole."""
        return -length % self.stride  # the windows then cover ceil(length / stride) frames

    def forward(self, x: Tensor) -> Tensor:
        extra = self.extra_padding(x.shape[-1])
        right = 0 if self.causal else self.padding_total // 2
        return self.convolve(pad1d(x, self.padding_total - right, right + extra,
                                   self.pad_mode))

    def convolve(self, x: Tensor) -> Tensor:
        """The convolution (and norm) on ``x`` already padded: ``(batch, in, time)`` ->
        ``(batch, out, (time - effective) // stride + 1)``."""
        c, weight = self.conv, inference_weight(self.conv)
        y = c(x) if weight is None else F.conv1d(x, weight, c.bias, c.stride, 0, c.dilation)
        return self.norm(y) if hasattr(self, "norm") else y


class PaddedConvTranspose1d(nn.Module):
    """ConvTranspose1d ``(batch, in, frames)`` -> ``(batch, out, frames * stride)`` with
    EnCodec's trimming (module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, *,
                 causal: bool = True, norm: str = "weight_norm",
                 trim_right_ratio: float = 1.0) -> None:
        super().__init__()
        _check(norm, "constant")
        if not causal and trim_right_ratio != 1.0:
            raise ValueError("trim_right_ratio != 1 needs causal convolutions")
        total = kernel_size - stride
        self.right = math.ceil(total * trim_right_ratio) if causal else total // 2
        self.left = total - self.right
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride)
        self.conv = weight_norm(conv) if norm == "weight_norm" else conv
        if norm == "time_group_norm":
            self.norm = nn.GroupNorm(1, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        c, weight = self.conv, inference_weight(self.conv)
        y = c(x) if weight is None else F.conv_transpose1d(x, weight, c.bias, c.stride)
        if hasattr(self, "norm"):
            y = self.norm(y)
        return y[..., self.left: y.shape[-1] - self.right]


class EncodecResidualUnit(nn.Module):
    """``shortcut(x) + conv1x1(elu(conv_k(elu(x))))`` at ``width`` channels; ``block`` is
    ``[ELU, conv_k, ELU, conv_1]``, ``shortcut`` a 1x1 conv (``conv_shortcut``) or the
    identity. ``(batch, width, time)`` -> same shape."""

    def __init__(self, width: int, kernel_size: int, dilation: int, compress: int,
                 conv_shortcut: bool, **conv: object) -> None:
        super().__init__()
        hidden = max(1, width // compress)
        self.block = nn.Sequential(
            nn.ELU(), PaddedConv1d(width, hidden, kernel_size, dilation=dilation, **conv),
            nn.ELU(), PaddedConv1d(hidden, width, 1, **conv))
        self.shortcut = PaddedConv1d(width, width, 1, **conv) if conv_shortcut else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.block(x)
