"""``rae.vit``: the RAE decoder, a ViT over the frozen encoder's tokens.

Latent ``(batch, dim, frames)`` (one token per frame) -> linear to ``width`` -> sin-cos
positions -> ``depth`` transformer blocks -> layer norm -> one patch per token:

- ``output: waveform``: ``hop_length`` samples per token (per channel), concatenated:
  ``(batch, channels, frames * hop_length)``;
- ``output: stft``: per token, the log magnitude and phase of ``hop_length / stft_hop``
  STFT frames (``n_fft`` = ``4 * stft_hop``), turned into ``(batch, channels, frames *
  hop_length)`` samples by the inverse STFT (the Vocos head): the waveform's fine structure
  comes from overlap-add instead of being predicted sample by sample, which learns a usable
  spectral envelope in far fewer steps. Speech encoders only (``tokens_per_step`` 1);
- ``output: spectrogram``: a patch of the natural-log mel power spectrogram (``log(max(mel,
  1e-5))``, ``n_mels`` bands, ``mel_hop`` samples per frame). Tokens come in time steps of
  ``tokens_per_step`` (the frequency rows of a spectrogram encoder's patch grid; 1 for
  speech encoders); each token of a step predicts ``step / mel_hop`` frames of its
  ``n_mels / tokens_per_step`` bands: ``(batch, n_mels, steps * step / mel_hop)``. The RAE
  model turns it into a waveform with its vocoder (``model.vocoder``, default
  ``rae.griffin_lim``) and trains it with ``rae.mel_l1`` on the input's mel.

The encoder's geometry (``dim``, ``hop_length``, ``window`` = tokens per encoder window,
``tokens_per_step``) is handed over by the ``rae.autoencoder`` model. Attention runs within
windows of ``window`` tokens, the span the encoder saw, so long inputs decode window by
window exactly as in training.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from audio_core.audio.dsp import MelSpectrogram, istft
from audio_core.audio.dsp.real_stft import onnx_tracing
from audio_core.contracts.components import Decoder
from audio_plugin_rae.transformer import Block, sincos_positions

OUTPUTS = ("waveform", "stft", "spectrogram")
LOG_EPS = 1e-5


def default_mel_hop(step: int, n_fft: int) -> int:
    """The largest divisor of ``step`` samples that is at most ``n_fft // 4``."""
    return max(d for d in range(1, max(1, n_fft // 4) + 1) if step % d == 0)


class ViTDecoder(nn.Module, Decoder):
    """See the module docstring. Shapes: latent ``(batch, dim, frames)`` -> waveform
    ``(batch, channels, frames * hop_length)`` or log-mel ``(batch, n_mels, mel_frames)``."""

    def __init__(self, dim: int, hop_length: int, *, channels: int = 1,
                 sample_rate: int = 16000, window: int | None = None,
                 tokens_per_step: int = 1, width: int = 256, depth: int = 4, heads: int = 4,
                 mlp_ratio: float = 4.0, qk_norm: bool = True, output: str = "waveform",
                 n_mels: int = 80, n_fft: int = 1024, mel_hop: int | None = None,
                 stft_hop: int | None = None, max_log_magnitude: float = 4.0) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"rae.vit: output must be one of {OUTPUTS}, got {output!r}")
        if min(dim, hop_length, channels, width, depth, heads, tokens_per_step) < 1 \
                or width % 2 or (window is not None and window < 1):
            raise ValueError(f"rae.vit needs dim, hop_length, channels, depth, heads, "
                             f"tokens_per_step, window >= 1 and an even width; got dim={dim}, "
                             f"hop_length={hop_length}, width={width}, depth={depth}, "
                             f"heads={heads}, window={window}")
        self.dim, self.hop_length, self.channels = dim, hop_length, channels
        self.sample_rate, self.window, self.width = sample_rate, window, width
        self.tokens_per_step, self.output = tokens_per_step, output
        self.embed = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, qk_norm)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        if output == "waveform":
            self.head = nn.Linear(width, channels * hop_length)
            return
        if output == "stft":
            self._stft_head(hop_length, channels, tokens_per_step, stft_hop, max_log_magnitude)
            return
        step = tokens_per_step * hop_length
        self.mel_hop = int(mel_hop or default_mel_hop(step, n_fft))
        if step % self.mel_hop or n_mels % tokens_per_step:
            raise ValueError(
                f"rae.vit spectrogram output: a time step of {tokens_per_step} token(s) covers "
                f"{step} samples, which must be a multiple of mel_hop={self.mel_hop}, and "
                f"n_mels={n_mels} must be a multiple of tokens_per_step={tokens_per_step}")
        self.n_mels, self.n_fft = n_mels, n_fft
        self.frames_per_step = step // self.mel_hop
        self.head = nn.Linear(width, self.frames_per_step * n_mels // tokens_per_step)
        self.mel = MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=self.mel_hop,
                                  n_mels=n_mels, log="log", log_eps=LOG_EPS)

    def _stft_head(self, hop_length: int, channels: int, tokens_per_step: int,
                   stft_hop: int | None, max_log_magnitude: float) -> None:
        self.stft_hop = int(stft_hop or hop_length // 4 or 1)
        if tokens_per_step != 1 or hop_length % self.stft_hop:
            raise ValueError(f"rae.vit stft output needs one token per time step (got "
                             f"tokens_per_step={tokens_per_step}) and a hop_length "
                             f"({hop_length}) that is a multiple of stft_hop={self.stft_hop}")
        self.stft_frames = hop_length // self.stft_hop
        self.stft_n_fft = 4 * self.stft_hop
        self.max_log_magnitude = float(max_log_magnitude)
        bins = self.stft_n_fft // 2 + 1
        self.head = nn.Linear(self.width, channels * self.stft_frames * 2 * bins)

    def _synthesize(self, h: Tensor) -> Tensor:
        """Tokens ``(batch, frames, width)`` -> waveform ``(batch, channels, frames * hop)``:
        ``stft_frames`` STFT frames per token, one repeated frame appended so the centred
        overlap-add covers exactly the last token's samples."""
        out = rearrange(self.head(h).float(), "b n (c k two f) -> b c two f (n k)",
                        c=self.channels, k=self.stft_frames, two=2)
        out = torch.cat([out, out[..., -1:]], dim=-1)
        magnitude = torch.exp(out[:, :, 0].clamp(max=self.max_log_magnitude))
        spec = torch.polar(magnitude, out[:, :, 1])
        wave = istft(spec, self.stft_n_fft, self.stft_hop, center=True,
                     length=h.shape[1] * self.hop_length)
        return wave.to(h.dtype)

    def tokens(self, latent: Tensor) -> Tensor:
        """Latent ``(batch, dim, frames)`` -> decoded tokens ``(batch, frames, width)``,
        attention within windows of ``window`` tokens."""
        if latent.ndim != 3 or latent.shape[1] != self.dim:
            raise ValueError(f"rae.vit expects a latent (batch, {self.dim}, frames), got "
                             f"{tuple(latent.shape)}")
        batch, frames = latent.shape[0], latent.shape[-1]
        span = self.window or frames
        n = (frames + span - 1) // span  # integer arithmetic: tensor ops when traced for ONNX
        n = max(1, n) if isinstance(n, int) else n
        x = nn.functional.pad(latent, (0, n * span - frames))
        real = torch.arange(n * span, device=latent.device) < frames
        h = self.embed(x.transpose(1, 2).reshape(-1, span, x.shape[1]))  # (b n) w d
        h = h + sincos_positions(span, self.width, device=h.device, dtype=h.dtype)
        mask = real.reshape(-1, span).repeat(batch, 1)  # (b n) w
        if not onnx_tracing() and bool(mask.all()):  # a graph keeps the mask: lengths vary
            mask = None
        for block in self.blocks:
            h = block(h, mask)
        h = self.norm(h).reshape(batch, -1, self.width)  # (b n) w c -> b (n w) c
        return h[:, :frames]

    def forward(self, latent: Tensor) -> Tensor:
        h = self.tokens(latent)
        if self.output == "waveform":
            return rearrange(self.head(h), "b n (c p) -> b c (n p)", c=self.channels)
        if self.output == "stft":
            return self._synthesize(h)
        frames = h.shape[1]
        pad = -frames % self.tokens_per_step
        patches = nn.functional.pad(self.head(h), (0, 0, 0, pad))
        return rearrange(patches, "b (s f) (p m) -> b (f m) (s p)", f=self.tokens_per_step,
                         p=self.frames_per_step)

    def mel_frames(self, frames: int) -> int:
        """Mel frames predicted for ``frames`` latent frames (spectrogram output)."""
        return math.ceil(frames / self.tokens_per_step) * self.frames_per_step

    def target_mel(self, waveform: Tensor, frames: int) -> Tensor:
        """The log-mel the spectrogram output is trained to match: of the channel mean of
        ``waveform`` ``(batch, channels, time)``, fp32, ``(batch, n_mels, frames)``."""
        mel = self.mel(waveform.float().mean(dim=1))[..., :frames]
        return nn.functional.pad(mel, (0, frames - mel.shape[-1]), value=math.log(LOG_EPS))
