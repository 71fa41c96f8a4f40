"""Pre-norm transformer blocks on ``scaled_dot_product_attention``, optional Conformer
convolution module and gradient checkpointing."""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from audio_core.components.attention import SelfAttention
from audio_plugin_bsq.conformer import ConvModule


class Attention(SelfAttention):
    """Core's multi-head self-attention (:class:`audio_core.components.attention.
    SelfAttention`) with attention dropout: ``(batch, tokens, width)`` -> same shape; the
    output projection keeps the name ``out`` of bsq's saved weights."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__(width, heads, dropout=dropout, proj_name="out")


class FeedForward(nn.Sequential):
    """``Linear -> GELU -> Dropout -> Linear``, hidden ``mlp_ratio * width``."""

    def __init__(self, width: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        hidden = int(width * mlp_ratio)
        super().__init__(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden, width))


class Block(nn.Module):
    """``x + attn(norm(x))``, then ``x + conv(x)`` (optional), then ``x + ff(norm(x))``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 conv_module: bool = False, conv_kernel: int = 31) -> None:
        super().__init__()
        self.attn_norm, self.attn = nn.LayerNorm(width), Attention(width, heads, dropout)
        self.conv = ConvModule(width, conv_kernel, dropout) if conv_module else None
        self.ff_norm, self.ff = nn.LayerNorm(width), FeedForward(width, mlp_ratio, dropout)
        self.drop = nn.Dropout(dropout)

    def _attend(self, x: Tensor) -> Tensor:
        return x + self.drop(self.attn(self.attn_norm(x)))

    def _feed(self, x: Tensor) -> Tensor:
        return x + self.drop(self.ff(self.ff_norm(x)))

    def forward(self, x: Tensor, freq_patches: int, checkpointing: bool = False) -> Tensor:
        """Tokens ``(batch, time * freq_patches, width)`` -> same shape.

        With ``checkpointing`` the attention and feed-forward halves are recomputed in
        backward; the convolution module is not, so its batch-norm statistics (and their
        all-reduce) are updated once per step.
        """
        run = (lambda f, h: checkpoint(f, h, use_reentrant=False)) if checkpointing else (
            lambda f, h: f(h))
        x = run(self._attend, x)
        if self.conv is not None:
            x = x + self.conv(x, freq_patches)
        return run(self._feed, x)


class Transformer(nn.Module):
    """``depth`` blocks and a final LayerNorm: ``(batch, tokens, width)`` -> same shape."""

    def __init__(self, width: int, depth: int, heads: int, mlp_ratio: float = 4.0,
                 dropout: float = 0.0, conv_module: bool = False, conv_kernel: int = 31,
                 checkpointing: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, dropout, conv_module,
                                          conv_kernel) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.checkpointing = checkpointing

    def forward(self, x: Tensor, freq_patches: int) -> Tensor:
        ckpt = self.checkpointing and self.training and x.requires_grad
        for block in self.blocks:
            x = block(x, freq_patches, ckpt)
        return self.norm(x)
