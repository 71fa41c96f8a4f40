"""Activations of the VAE's conv stacks: ELU and Snake (periodic, per-channel frequency)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

ACTIVATIONS = ("elu", "snake")


class Snake(nn.Module):
    """``x + sin(alpha * x)^2 / alpha`` with a learned ``alpha`` per channel.

    Input ``(batch, channels, time)``. ``alpha`` is stored as its logarithm (initialised to
    ``log(alpha_init)``), so it stays positive; a tiny epsilon keeps ``1 / alpha`` finite.
    """

    def __init__(self, channels: int, alpha_init: float = 1.0) -> None:
        super().__init__()
        if alpha_init <= 0:
            raise ValueError(f"Snake alpha_init must be > 0, got {alpha_init}")
        self.log_alpha = nn.Parameter(torch.full((channels, 1), float(alpha_init)).log())

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.log_alpha.exp().to(x.dtype)
        return x + torch.sin(alpha * x).pow(2) / (alpha + 1e-9)


def activation(name: str, channels: int) -> nn.Module:
    """The activation ``name`` (``"elu"`` or ``"snake"``) for ``channels`` channels."""
    if name == "elu":
        return nn.ELU()
    if name == "snake":
        return Snake(channels)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got '{name}'")
