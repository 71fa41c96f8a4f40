"""A small, causal energy-transformer bottleneck (after Hoover et al., 2023).

Frames are tokens ``x`` ``(batch, frames, dim)``; ``g = LayerNorm(x)``. One energy

    E(g) = -1/beta * sum_h sum_t logsumexp_{s in window(t)} beta <W_K^h g_s, W_Q^h g_t>
           - 1/2 * sum_t sum_m relu(<xi_m, g_t>)^2

(attention energy + Hopfield-memory energy, weights shared by every step) is lowered by
``steps`` explicit descent steps ``x <- x - step_size * dE/dg``. To stay causal and
streamable, keys are treated as fixed memories when taking the gradient, so the update of
frame ``t`` is ``W_Q^T softmax(beta q_t K^T) K + xi^T relu(xi g_t)`` over the keys of
frames ``t - window + 1 .. t`` only. Streaming carries each step's last ``window - 1`` keys.
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange
from torch import Tensor, nn

from audio_plugin_soundstream.streaming import StreamingState


class EnergyTransformer(nn.Module):
    """``(batch, dim, frames)`` -> ``(batch, dim, frames)``: ``steps`` energy-descent steps."""

    def __init__(self, dim: int, heads: int = 4, head_dim: int = 32, memories: int | None = None,
                 steps: int = 2, step_size: float = 0.5, window: int = 32) -> None:
        super().__init__()
        if steps < 1 or window < 1:
            raise ValueError(f"steps and window must be >= 1, got {steps} and {window}")
        self.steps, self.step_size, self.window = steps, step_size, window
        self.beta = head_dim ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.wq = nn.Parameter(torch.randn(heads, head_dim, dim) * dim ** -0.5)
        self.wk = nn.Parameter(torch.randn(heads, head_dim, dim) * dim ** -0.5)
        self.memories = nn.Parameter(torch.randn(memories or 2 * dim, dim) * dim ** -0.5)

    def descent(self, g: Tensor, past: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor,
                                                                                     Tensor]]:
        """``-dE/dg`` ``(batch, frames, dim)`` for normalised tokens ``g``, given the previous
        ``window - 1`` keys ``(batch, heads, window - 1, head_dim)`` and their validity
        ``(batch, window - 1)``; also returns the keys to carry."""
        q = einsum(g, self.wq, "b t d, h e d -> b h t e")
        k = einsum(g, self.wk, "b t d, h e d -> b h t e")
        past_k, past_ok = past
        keys = torch.cat([past_k, k], dim=2)  # (b, h, window - 1 + t, e)
        ok = torch.cat([past_ok, past_ok.new_ones(g.shape[0], g.shape[1])], dim=1)
        windows = rearrange(keys.unfold(2, self.window, 1), "b h t e w -> b h t w e")
        valid = rearrange(ok.unfold(1, self.window, 1), "b t w -> b 1 t w")
        scores = einsum(q, windows, "b h t e, b h t w e -> b h t w") * self.beta
        attn = scores.masked_fill(~valid, float("-inf")).softmax(dim=-1)
        pulled = einsum(attn, windows, "b h t w, b h t w e -> b h t e")
        update = einsum(pulled, self.wq, "b h t e, h e d -> b t d")
        hidden = torch.relu(g @ self.memories.t())
        keep = self.window - 1
        carry = (keys[:, :, keys.shape[2] - keep:], ok[:, ok.shape[1] - keep:])
        return update + hidden @ self.memories, carry

    def _empty(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, heads, head_dim = x.shape[0], self.wq.shape[0], self.wq.shape[1]
        return (x.new_zeros(b, heads, self.window - 1, head_dim),
                torch.zeros(b, self.window - 1, dtype=torch.bool, device=x.device))

    def _run(self, x: Tensor, carried: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, list]:
        h = rearrange(x, "b d t -> b t d")
        out = []
        for past in carried:
            update, carry = self.descent(self.norm(h), past)
            h = h + self.step_size * update
            out.append(carry)
        return rearrange(h, "b t d -> b d t"), out

    def forward(self, x: Tensor) -> Tensor:
        return self._run(x, [self._empty(x)] * self.steps)[0]

    def stream(self, x: Tensor, state: StreamingState) -> Tensor:
        if x.shape[-1] == 0:
            return x
        y, carried = self._run(x, state.get(self, lambda: [self._empty(x)] * self.steps))
        state[self] = carried
        return y
