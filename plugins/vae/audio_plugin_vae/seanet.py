"""Non-causal SEANet-style encoder and decoder of the VAE.

Encoder: waveform ``(batch, channels, time)`` -> ``(batch, dim, ceil(time / hop_length))``
with ``dim = 2 * latent_dim`` (posterior mean and scale, split by the ``vae.gaussian``
bottleneck) or ``latent_dim`` (``posterior=False``). The waveform is zero-padded on the
right to a whole number of hops once, at the input. Decoder: latent ``(batch, latent_dim,
frames)`` -> ``(batch, channels, frames * hop_length)``.

Stage ``i`` of the encoder runs ``residual_blocks`` dilated residual units (dilations
``dilation_base ** j``) at ``width * multipliers[i - 1]`` channels (``width`` for the
first), then a strided conv (kernel ``2 * strides[i]``) to ``width * multipliers[i]``.
The decoder mirrors it with transposed convs. ``hop_length`` is the product of
``strides``; a declared ``hop_length`` that differs is an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from audio_core.components.discriminators import normalized
from audio_core.contracts.components import Decoder, Encoder
from audio_plugin_vae.activations import activation as make_activation


def _conv(in_ch: int, out_ch: int, kernel_size: int, norm: str, dilation: int = 1) -> nn.Module:
    """Stride-1 conv keeping the length (odd ``kernel_size``: symmetric padding)."""
    if kernel_size % 2 == 0:
        raise ValueError(f"stride-1 convolutions need an odd kernel_size, got {kernel_size}")
    pad = dilation * (kernel_size - 1) // 2
    return normalized(nn.Conv1d(in_ch, out_ch, kernel_size, dilation=dilation, padding=pad),
                      norm)


class ResidualUnit(nn.Module):
    """``x + conv1x1(act(conv_k,dilated(act(x))))`` at ``width`` channels."""

    def __init__(self, width: int, dilation: int, kernel_size: int, act: str,
                 norm: str) -> None:
        super().__init__()
        self.block = nn.Sequential(
            make_activation(act, width), _conv(width, width, kernel_size, norm, dilation),
            make_activation(act, width), _conv(width, width, 1, norm))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class Downsample(nn.Module):
    """``act`` then a conv with kernel ``2 * stride`` and stride ``stride``: ``(batch,
    in_ch, n * stride)`` -> ``(batch, out_ch, n)`` (``stride`` samples of padding, split
    around the signal)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, act: str, norm: str) -> None:
        super().__init__()
        self.stride = stride
        self.act = make_activation(act, in_ch)
        self.conv = normalized(nn.Conv1d(in_ch, out_ch, 2 * stride, stride=stride), norm)

    def forward(self, x: Tensor) -> Tensor:
        left = (self.stride + 1) // 2
        return self.conv(F.pad(self.act(x), (left, self.stride - left)))


class Upsample(nn.Module):
    """``act`` then a transposed conv with kernel ``2 * stride``: ``(batch, in_ch, n)`` ->
    ``(batch, out_ch, n * stride)`` (the ``stride`` extra samples trimmed around it)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, act: str, norm: str) -> None:
        super().__init__()
        self.stride = stride
        self.act = make_activation(act, in_ch)
        self.conv = normalized(nn.ConvTranspose1d(in_ch, out_ch, 2 * stride, stride=stride),
                               norm)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(self.act(x))
        left = (self.stride + 1) // 2
        return y[..., left:y.shape[-1] - (self.stride - left)]


def stage_widths(width: int, strides: Sequence[int], multipliers: Sequence[int] | None
                 ) -> list[int]:
    """Channels before the first stage and after each: ``[width, width * m_1, ...]``
    (default multipliers double per stage)."""
    if multipliers is None:
        multipliers = [2 ** (i + 1) for i in range(len(strides))]
    if len(multipliers) != len(strides):
        raise ValueError(f"multipliers needs one entry per stride: got multipliers="
                         f"{list(multipliers)} for strides={list(strides)}")
    if any(int(m) < 1 for m in multipliers):
        raise ValueError(f"multipliers must be >= 1, got {list(multipliers)}")
    return [int(width)] + [int(width) * int(m) for m in multipliers]


def check_geometry(strides: Sequence[int], hop_length: int | None, **sizes: int) -> int:
    """The stride product (the hop); a ``ValueError`` naming the bad value when a stride or
    size is < 1 or the declared ``hop_length`` differs from the product."""
    if not strides or any(int(s) < 1 for s in strides):
        raise ValueError(f"strides must be a non-empty list of integers >= 1, got "
                         f"{list(strides)}")
    bad = {k: v for k, v in sizes.items() if int(v) < 1}
    if bad:
        raise ValueError("must be >= 1: " + ", ".join(f"{k}={v}" for k, v in bad.items()))
    product = math.prod(int(s) for s in strides)
    if hop_length is not None and int(hop_length) != product:
        raise ValueError(f"hop_length {hop_length} does not match the strides {list(strides)}, "
                         f"whose product is {product}: fix the strides or the declared hop")
    return product


def _residual_stack(width: int, blocks: int, dilation_base: int, kernel_size: int, act: str,
                    norm: str) -> list[nn.Module]:
    return [ResidualUnit(width, dilation_base ** j, kernel_size, act, norm)
            for j in range(blocks)]


class VAEEncoder(nn.Module, Encoder):
    """SEANet-style encoder: ``(batch, channels, time)`` -> ``(batch, dim, frames)``.

    Params: ``channels`` (1 mono, 2 stereo), ``latent_dim``, ``width``, ``strides``,
    ``multipliers``, ``residual_blocks`` per stage, ``dilation_base``, ``kernel_size``,
    ``activation`` (``elu`` or ``snake``), ``norm`` (``weight``, ``spectral``, ``none``),
    ``posterior`` (output mean and scale: ``dim = 2 * latent_dim``), ``hop_length`` (the
    declared hop, checked against the strides).
    """

    def __init__(self, channels: int = 1, latent_dim: int = 64, width: int = 32,
                 strides: Sequence[int] = (2, 4, 5, 8), multipliers: Sequence[int] | None = None,
                 residual_blocks: int = 3, dilation_base: int = 3, kernel_size: int = 7,
                 activation: str = "elu", norm: str = "weight", posterior: bool = True,
                 hop_length: int | None = None) -> None:
        super().__init__()
        self.hop_length = check_geometry(strides, hop_length, channels=channels,
                                         latent_dim=latent_dim, width=width)
        self.channels, self.latent_dim = int(channels), int(latent_dim)
        self.strides = [int(s) for s in strides]
        self.dim = 2 * self.latent_dim if posterior else self.latent_dim
        widths = stage_widths(width, self.strides, multipliers)
        layers: list[nn.Module] = [_conv(self.channels, widths[0], kernel_size, norm)]
        for i, stride in enumerate(self.strides):
            layers += _residual_stack(widths[i], residual_blocks, dilation_base, kernel_size,
                                      activation, norm)
            layers.append(Downsample(widths[i], widths[i + 1], stride, activation, norm))
        layers += [make_activation(activation, widths[-1]), _conv(widths[-1], self.dim, 3, norm)]
        self.net = nn.Sequential(*layers)

    def forward(self, waveform: Tensor) -> Tensor:
        if waveform.ndim != 3 or waveform.shape[1] != self.channels:
            raise ValueError(f"expected a waveform (batch, {self.channels}, time), got shape "
                             f"{tuple(waveform.shape)}")
        return self.net(F.pad(waveform, (0, -waveform.shape[-1] % self.hop_length)))


class VAEDecoder(nn.Module, Decoder):
    """SEANet-style decoder: ``(batch, latent_dim, frames)`` -> ``(batch, channels,
    frames * hop_length)``; mirrors :class:`VAEEncoder` (same params; ``tanh`` bounds the
    output to ``[-1, 1]``)."""

    def __init__(self, channels: int = 1, latent_dim: int = 64, width: int = 32,
                 strides: Sequence[int] = (2, 4, 5, 8), multipliers: Sequence[int] | None = None,
                 residual_blocks: int = 3, dilation_base: int = 3, kernel_size: int = 7,
                 activation: str = "elu", norm: str = "weight", tanh: bool = False,
                 hop_length: int | None = None) -> None:
        super().__init__()
        self.hop_length = check_geometry(strides, hop_length, channels=channels,
                                         latent_dim=latent_dim, width=width)
        self.channels, self.dim = int(channels), int(latent_dim)
        self.strides = [int(s) for s in strides]
        widths = stage_widths(width, self.strides, multipliers)
        layers: list[nn.Module] = [_conv(self.dim, widths[-1], kernel_size, norm)]
        for i in reversed(range(len(self.strides))):
            layers.append(Upsample(widths[i + 1], widths[i], self.strides[i], activation, norm))
            layers += _residual_stack(widths[i], residual_blocks, dilation_base, kernel_size,
                                      activation, norm)
        layers += [make_activation(activation, widths[0]),
                   _conv(widths[0], self.channels, kernel_size, norm)]
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, latent: Tensor) -> Tensor:
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"expected a latent (batch, {self.dim}, frames), got shape "
                             f"{tuple(latent.shape)}")
        return self.net(latent)

