"""Classifier-free guidance (Ho & Salimans 2022): at sampling time and in training.

At sampling time :func:`guided_denoiser` wraps the raw network ``net_fn(x, t_net,
conditioning)`` into the ``denoise(x_t, t) -> x0_hat`` every sampler takes::

    x0_hat = x0_uncond + scale * (x0_cond - x0_uncond)

from one network call on the concatenated batch ``[cond; null]``. In training,
:func:`drop_conditioning` replaces the conditioning of some examples by the null embedding,
so the same network learns both predictions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch import Tensor

from audio_core.contracts.components import Objective
from audio_core.contracts.records import Conditioning

#: The raw network: ``(net_input, net_time, conditioning or None) -> prediction``.
NetFn = Callable[[Tensor, Tensor, Conditioning | None], Tensor]


def pad_tokens(cond: Conditioning, tokens: int) -> Conditioning:
    """``cond`` with exactly ``tokens`` tokens: padding (zeros, mask False) added or trailing
    tokens trimmed."""
    have = cond.embeddings.shape[1]
    if have >= tokens:
        return Conditioning(cond.embeddings[:, :tokens], cond.mask[:, :tokens])
    extra = tokens - have
    emb = torch.nn.functional.pad(cond.embeddings, (0, 0, 0, extra))
    mask = torch.nn.functional.pad(cond.mask, (0, extra), value=False)
    return Conditioning(emb, mask)


def _batched_null(null: Conditioning, batch: int, like: Conditioning) -> Conditioning:
    """``null`` with ``batch`` rows (a single row is repeated), on ``like``'s device/dtype."""
    rows = len(null)
    if rows not in (1, batch):
        raise ValueError(f"null conditioning must have 1 or {batch} rows, got {rows}")
    null = null.to(device=like.embeddings.device, dtype=like.embeddings.dtype)
    return Conditioning(null.embeddings.expand(batch, -1, -1), null.mask.expand(batch, -1))


def matched(cond: Conditioning, null: Conditioning) -> tuple[Conditioning, Conditioning]:
    """``cond`` and ``null`` (1 or ``len(cond)`` rows) with the same batch and token count
    (the longer count; the shorter is padded)."""
    null = _batched_null(null, len(cond), cond)
    tokens = max(cond.embeddings.shape[1], null.embeddings.shape[1])
    return pad_tokens(cond, tokens), pad_tokens(null, tokens)


def concat_conditioning(first: Conditioning, second: Conditioning) -> Conditioning:
    """Batch concatenation ``[first; second]``; token counts are padded to match."""
    tokens = max(first.embeddings.shape[1], second.embeddings.shape[1])
    first, second = pad_tokens(first, tokens), pad_tokens(second, tokens)
    return Conditioning(torch.cat([first.embeddings, second.embeddings.to(first.embeddings)]),
                        torch.cat([first.mask, second.mask.to(first.mask.device)]))


def drop_conditioning(cond: Conditioning, null: Conditioning, drop_mask: Tensor
                      ) -> Conditioning:
    """Per-example replacement of ``cond`` by ``null`` where ``drop_mask`` ``(batch,)`` is
    True (CFG training). ``null`` has 1 or ``batch`` rows; token counts are padded to the
    longer of the two (mask False on padding). Gradients reach the kept rows of ``cond`` and
    the used rows of ``null``."""
    if drop_mask.shape != (len(cond),):
        raise ValueError(f"drop_mask must be (batch,) = ({len(cond)},), got "
                         f"{tuple(drop_mask.shape)}")
    cond, null = matched(cond, null)
    drop = drop_mask.to(device=cond.mask.device, dtype=torch.bool)
    emb = torch.where(rearrange(drop, "b -> b 1 1"), null.embeddings, cond.embeddings)
    mask = torch.where(rearrange(drop, "b -> b 1"), null.mask, cond.mask)
    return Conditioning(emb, mask)


def guided_denoiser(net_fn: NetFn, objective: Objective, cond: Conditioning | None,
                    null: Conditioning | None, scale: float, *,
                    dtype: torch.dtype | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """``denoise(x_t, t) -> x0_hat`` (fp32) for the samplers, with guidance ``scale``.

    ``cond is None``: unconditional, the network sees ``null`` (which may be ``None`` for an
    unconditional network). ``scale == 1``: only the conditional prediction is computed.
    Otherwise ``x0_u + scale * (x0_c - x0_u)`` from ONE call on ``[cond; null]`` (``null``
    with 1 or ``len(cond)`` rows). ``dtype``: cast the network input to it (e.g. bf16).
    """
    scale = float(scale)

    def call(x_t: Tensor, t: Tensor, conditioning: Conditioning | None) -> Tensor:
        net_input, net_time = objective.net_inputs(x_t, t)
        if dtype is not None:
            net_input = net_input.to(dtype)
        return net_fn(net_input, net_time, conditioning)

    if cond is None or scale == 1.0:
        only = null if cond is None else cond

        def denoise(x_t: Tensor, t: Tensor) -> Tensor:
            return objective.denoised(call(x_t, t, only), x_t, t)

        return denoise
    if null is None:
        raise ValueError(f"guidance scale {scale} != 1 needs a null conditioning")
    both = concat_conditioning(*matched(cond, null))

    def guided(x_t: Tensor, t: Tensor) -> Tensor:
        x_pair, t_pair = torch.cat([x_t, x_t]), torch.cat([t, t])
        x0_cond, x0_null = objective.denoised(call(x_pair, t_pair, both), x_pair,
                                              t_pair).chunk(2)
        return x0_null + scale * (x0_cond - x0_null)

    return guided
