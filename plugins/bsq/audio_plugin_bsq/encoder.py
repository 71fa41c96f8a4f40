"""Spectrogram transformer encoder: normalised log-mel patches -> token latents."""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from audio_core.contracts.components import Encoder
from audio_plugin_bsq.patching import PatchEmbed, PositionEmbedding, check_grid
from audio_plugin_bsq.transformer import Transformer


class SpectrogramEncoder(nn.Module, Encoder):
    """Log-mel ``(batch, n_mels, frames)`` scaled to about [-1, 1] -> latent
    ``(batch, width, tokens)``, ``tokens = frames / patch_time * n_mels / patch_freq``.

    Tokens are ordered time-major: token ``t * freq_patches + f`` covers frames
    ``[t * patch_time, (t + 1) * patch_time)`` and mel bins ``[f * patch_freq, ...)``.
    Attributes read by the model and decoder: ``dim`` (= ``width``), ``hop_length``
    (frames per time step = ``patch_time``), ``freq_patches`` (tokens per time step),
    ``max_time_patches``.
    """

    def __init__(self, n_mels: int = 128, max_frames: int = 1024, patch_time: int = 16,
                 patch_freq: int = 16, width: int = 512, depth: int = 6, heads: int = 8,
                 mlp_ratio: float = 4.0, dropout: float = 0.0, conv_module: bool = True,
                 conv_kernel: int = 31, checkpointing: bool = False) -> None:
        super().__init__()
        self.max_time_patches, self.freq_patches = check_grid(n_mels, patch_freq, max_frames,
                                                              patch_time)
        self.n_mels, self.dim, self.hop_length = n_mels, width, patch_time
        self.patch = PatchEmbed(patch_time, patch_freq, width)
        self.pos = PositionEmbedding(self.max_time_patches, self.freq_patches, width)
        self.transformer = Transformer(width, depth, heads, mlp_ratio, dropout, conv_module,
                                       conv_kernel, checkpointing)

    def forward(self, spec: Tensor) -> Tensor:
        tokens = self.patch(spec)
        tokens = tokens + self.pos(tokens.shape[1] // self.freq_patches).to(tokens.dtype)
        return rearrange(self.transformer(tokens, self.freq_patches), "b n d -> b d n")
