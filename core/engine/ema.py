"""Exponential moving average of a role's parameters, kept outside the DeepSpeed engines.

``ema = decay * ema + (1 - decay) * param`` after every applied optimizer step. The copy is
fp32, full size and identical on every rank; under ZeRO-3 the parameters are gathered
read-only for the update.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


class EMA:
    """EMA of ``engine``'s parameters (an :class:`~audio_core.engine.engine.Engine`)."""

    def __init__(self, engine, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.engine, self.decay, self.updates = engine, decay, 0
        with engine.gathered() as module:
            self.shadow = {name: p.detach().float().clone()
                           for name, p in module.named_parameters()}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current parameters in; call only after an applied step."""
        with self.engine.gathered() as module:
            for name, p in module.named_parameters():
                self.shadow[name].lerp_(p.detach().float(), 1.0 - self.decay)
        self.updates += 1

    def state_dict(self) -> dict[str, Tensor]:
        """Shadow parameters (fp32, CPU) by name."""
        return {name: t.cpu() for name, t in self.shadow.items()}

    def load_state_dict(self, state: Mapping[str, Tensor], updates: int = 0) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise KeyError(f"EMA state lacks parameters {missing[:5]}")
        for name, t in self.shadow.items():
            t.copy_(state[name].to(t.device))
        self.updates = updates

    def full_state_dict(self, module_state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``module_state`` (parameters and buffers) with parameters replaced by the EMA."""
        return {k: self.shadow[k].cpu() if k in self.shadow else v
                for k, v in module_state.items()}
