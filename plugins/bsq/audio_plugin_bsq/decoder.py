"""Spectrogram transformer decoder: token latents -> normalised log-mel (mirrors the encoder)."""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from audio_core.contracts.components import Decoder
from audio_plugin_bsq.patching import PatchUnembed, PositionEmbedding, check_grid
from audio_plugin_bsq.transformer import Transformer


class SpectrogramDecoder(nn.Module, Decoder):
    """Latent ``(batch, width, tokens)`` -> log-mel ``(batch, n_mels, frames)`` in the
    encoder's [-1, 1] scale, ``frames = tokens / freq_patches * patch_time``.

    Same parameters as :class:`~audio_plugin_bsq.encoder.SpectrogramEncoder`; the token
    order is the encoder's (time-major).
    """

    def __init__(self, n_mels: int = 128, max_frames: int = 1024, patch_time: int = 16,
                 patch_freq: int = 16, width: int = 512, depth: int = 6, heads: int = 8,
                 mlp_ratio: float = 4.0, dropout: float = 0.0, conv_module: bool = True,
                 conv_kernel: int = 31, checkpointing: bool = False) -> None:
        super().__init__()
        self.max_time_patches, self.freq_patches = check_grid(n_mels, patch_freq, max_frames,
                                                              patch_time)
        self.n_mels, self.dim, self.hop_length = n_mels, width, patch_time
        self.proj = nn.Linear(width, width)
        self.pos = PositionEmbedding(self.max_time_patches, self.freq_patches, width)
        self.transformer = Transformer(width, depth, heads, mlp_ratio, dropout, conv_module,
                                       conv_kernel, checkpointing)
        self.unpatch = PatchUnembed(patch_time, patch_freq, width, self.freq_patches)

    def forward(self, latent: Tensor) -> Tensor:
        tokens = self.proj(rearrange(latent, "b d n -> b n d"))
        if tokens.shape[1] % self.freq_patches:
            raise ValueError(f"{tokens.shape[1]} tokens is not a multiple of "
                             f"freq_patches={self.freq_patches}")
        tokens = tokens + self.pos(tokens.shape[1] // self.freq_patches).to(tokens.dtype)
        return self.unpatch(self.transformer(tokens, self.freq_patches))
