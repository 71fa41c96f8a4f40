"""Conformer convolution module over the time axis of a time-frequency token grid."""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from audio_plugin_bsq.batchnorm import SyncBatchNorm1d


class ConvModule(nn.Module):
    """LayerNorm -> pointwise x2 -> GLU -> depthwise conv (``kernel_size``) -> batch norm
    -> SiLU -> pointwise, on tokens ``(batch, time * freq, width)`` ordered time-major.

    The depthwise convolution runs along time, separately for each frequency patch. The
    batch norm is a :class:`~audio_plugin_bsq.batchnorm.SyncBatchNorm1d`: statistics over
    every rank when distributed, exactly ``BatchNorm1d`` otherwise, fp32 under bf16.
    """

    def __init__(self, width: int, kernel_size: int = 31, dropout: float = 0.0) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.norm = nn.LayerNorm(width)
        self.pointwise_in = nn.Linear(width, 2 * width)
        self.glu = nn.GLU(dim=-1)
        self.depthwise = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2,
                                   groups=width)
        self.batch_norm = SyncBatchNorm1d(width)
        self.act = nn.SiLU()
        self.pointwise_out = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, freq_patches: int) -> Tensor:
        """Tokens ``(batch, time * freq_patches, width)`` -> same shape (residual not added)."""
        h = self.glu(self.pointwise_in(self.norm(x)))
        h = rearrange(h, "b (t f) d -> (b f) d t", f=freq_patches)
        h = self.act(self.batch_norm(self.depthwise(h)))
        h = rearrange(h, "(b f) d t -> b (t f) d", f=freq_patches)
        return self.dropout(self.pointwise_out(h))
