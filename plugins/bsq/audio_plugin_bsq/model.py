"""The BSQ tokenizer: log-mel (dB) -> transformer encoder -> BSQ -> transformer decoder.

    model = BSQTokenizer(encoder, quantizer, decoder)
    recon, quant_loss, info = model(mel)        # mel, recon: (batch, n_mels, frames) dB
    codes = model.encode(mel)                   # (batch, codes_per_token, tokens) int64
    mel_hat = model.decode(codes, frames)       # == recon (eval mode)
    wave_hat = model.reconstruct(wave)          # waveform in/out: core mel + vocoder
    grid = model.encode_codes(wave)             # core codec contract: audio-core encode/decode
"""

from __future__ import annotations

import math
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from audio_core.audio.dsp import MelSpectrogram
from audio_plugin_bsq.codes import num_codes
from audio_plugin_bsq.vocoder import GriffinLimVocoder


class BSQTokenizer(nn.Module):
    """Encoder, quantizer and decoder on dB log-mels, plus the mel front end and a vocoder.

    dB values in ``db_range`` are mapped linearly to [-1, 1] before the encoder and back
    after the decoder. Spectrograms longer than the encoder's ``max_time_patches`` are cut
    into independent chunks of that many time patches (``encode`` and ``decode`` agree).
    ``vocoder`` maps a dB mel to a waveform (default :class:`GriffinLimVocoder`).
    """

    def __init__(self, encoder: nn.Module, quantizer: nn.Module, decoder: nn.Module, *,
                 sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160,
                 n_mels: int = 128, db_range: tuple[float, float] = (-80.0, 0.0),
                 vocoder: nn.Module | None = None) -> None:
        super().__init__()
        if encoder.n_mels != n_mels or decoder.n_mels != n_mels:
            raise ValueError(f"encoder/decoder n_mels ({encoder.n_mels}, {decoder.n_mels}) "
                             f"differ from the mel front end's {n_mels}")
        self.encoder, self.quantizer, self.decoder = encoder, quantizer, decoder
        self.sample_rate, self.hop_length, self.n_mels = sample_rate, hop_length, n_mels
        self.db_range = (float(db_range[0]), float(db_range[1]))
        self.mel = MelSpectrogram(sample_rate, n_fft, hop_length, n_mels=n_mels, power=2.0,
                                  log="db", clamp=self.db_range)
        self.vocoder = vocoder if vocoder is not None else GriffinLimVocoder(
            sample_rate, n_fft, hop_length, n_mels)

    # -- geometry -------------------------------------------------------------------------
    @property
    def patch_time(self) -> int:
        return int(self.encoder.hop_length)

    @property
    def freq_patches(self) -> int:
        """Tokens per time step."""
        return int(self.encoder.freq_patches)

    @property
    def frame_rate(self) -> float:
        """Time steps (of ``freq_patches`` tokens each) per second of audio."""
        return self.sample_rate / (self.hop_length * self.patch_time)

    @property
    def bits(self) -> int:
        return int(self.quantizer.bits)

    @property
    def bitrate(self) -> float:
        """Bits per second of audio."""
        return self.frame_rate * self.freq_patches * self.bits

    # -- scaling and chunking ---------------------------------------------------------------
    def normalize(self, mel_db: Tensor) -> Tensor:
        lo, hi = self.db_range
        return (mel_db - lo) * (2.0 / (hi - lo)) - 1.0

    def denormalize(self, x: Tensor) -> Tensor:
        lo, hi = self.db_range
        return (x + 1.0) * ((hi - lo) / 2.0) + lo

    def _steps(self, frames: int) -> tuple[int, int]:
        """(padded time steps, chunks) for ``frames`` mel frames."""
        steps, chunk = math.ceil(frames / self.patch_time), self.encoder.max_time_patches
        if steps <= chunk:
            return steps, 1
        chunks = math.ceil(steps / chunk)
        return chunks * chunk, chunks

    def _to_chunks(self, x: Tensor) -> tuple[Tensor, int]:
        """Normalised mel ``(b, m, frames)`` -> ``(b * chunks, m, chunk frames)``, chunks."""
        steps, chunks = self._steps(x.shape[-1])
        x = nn.functional.pad(x, (0, steps * self.patch_time - x.shape[-1]), value=-1.0)
        return rearrange(x, "b m (c t) -> (b c) m t", c=chunks), chunks

    def _encode_latent(self, mel_db: Tensor) -> tuple[Tensor, int]:
        x, chunks = self._to_chunks(self.normalize(mel_db))
        return self.encoder(x.to(self._dtype())), chunks

    def _decode_latent(self, latent: Tensor, chunks: int, frames: int | None) -> Tensor:
        x = self.denormalize(self.decoder(latent).float())
        x = rearrange(x, "(b c) m t -> b m (c t)", c=chunks)
        return x if frames is None else x[..., :frames]

    def _dtype(self) -> torch.dtype:
        return self.encoder.patch.proj.weight.dtype

    # -- the API ----------------------------------------------------------------------------
    def forward(self, mel_db: Tensor) -> tuple[Tensor, Tensor, dict[str, Any]]:
        """dB mel ``(batch, n_mels, frames)`` -> (reconstruction in dB, same shape, unclamped;
        scalar quantizer loss; info with ``codes`` ``(batch, k, tokens)``, ``metrics``)."""
        latent, chunks = self._encode_latent(mel_db)
        result = self.quantizer(latent)
        recon = self._decode_latent(result.latent, chunks, mel_db.shape[-1])
        codes = rearrange(result.codes, "(b c) k n -> b k (c n)", c=chunks)
        return recon, result.loss, {"codes": codes, "metrics": result.metrics,
                                    "bits_per_token": result.bits_per_frame}

    @torch.no_grad()
    def encode(self, mel_db: Tensor) -> Tensor:
        """dB mel ``(batch, n_mels, frames)`` -> codes ``(batch, k, tokens)`` int64, tokens
        time-major (``freq_patches`` per time step)."""
        latent, chunks = self._encode_latent(mel_db)
        return rearrange(self.quantizer.encode(latent), "(b c) k n -> b k (c n)", c=chunks)

    @torch.no_grad()
    def decode(self, codes: Tensor, frames: int | None = None) -> Tensor:
        """Codes ``(batch, k, tokens)`` -> dB mel ``(batch, n_mels, frames)`` (default: every
        frame the tokens cover)."""
        steps = codes.shape[-1] // self.freq_patches
        padded, chunks = self._steps(steps * self.patch_time)
        if padded != steps:
            raise ValueError(f"{steps} time steps cannot be decoded: sequences longer than "
                             f"{self.encoder.max_time_patches} steps must come in whole chunks")
        codes = rearrange(codes, "b k (c n) -> (b c) k n", c=chunks)
        return self._decode_latent(self.quantizer.decode(codes), chunks, frames)

    # -- waveforms ----------------------------------------------------------------------------
    def mel_spectrogram(self, waveform: Tensor) -> Tensor:
        """Waveform ``(batch, time)`` or ``(batch, channels, time)`` -> dB mel
        ``(batch * channels, n_mels, 1 + time // hop_length)``, fp32, clamped to ``db_range``."""
        if waveform.ndim == 3:
            waveform = rearrange(waveform, "b c t -> (b c) t")
        return self.mel(waveform.float())

    def mel_to_waveform(self, mel_db: Tensor, length: int | None = None) -> Tensor:
        """dB mel -> waveform ``(batch, 1, time)`` through the vocoder (clamped first)."""
        return self.vocoder(mel_db.float().clamp(*self.db_range), length)

    @torch.no_grad()
    def encode_audio(self, waveform: Tensor) -> Tensor:
        """Waveform -> codes ``(batch * channels, k, tokens)``."""
        return self.encode(self.mel_spectrogram(waveform))

    @torch.no_grad()
    def decode_audio(self, codes: Tensor, length: int | None = None) -> Tensor:
        """Codes -> waveform ``(batch, 1, length)`` (frames implied by ``length``)."""
        frames = None if length is None else 1 + length // self.hop_length
        return self.mel_to_waveform(self.decode(codes, frames), length)

    @torch.no_grad()
    def reconstruct(self, waveform: Tensor) -> Tensor:
        """Waveform ``(batch, channels, time)`` -> waveform of the same shape."""
        squeeze = waveform.ndim == 2
        wave = waveform[:, None] if squeeze else waveform
        recon, _, _ = self(self.mel_spectrogram(wave))
        out = self.mel_to_waveform(recon, wave.shape[-1])
        out = rearrange(out, "(b c) 1 t -> b c t", c=wave.shape[1])
        return out[:, 0] if squeeze else out

    # -- the core codec contract (audio-core encode/decode/reconstruct, token files) ---------
    @property
    def samples_per_step(self) -> int:
        """Waveform samples per time step: ``hop_length * patch_time``."""
        return self.hop_length * self.patch_time

    def codec_spec(self) -> dict[str, int | bool]:
        """One code frame per time step with ``freq_patches * k`` rows (frequency patch
        major, then the ``k`` codes of its token), ``bits_per_code`` bits each. Every row is
        needed to decode: the bitrate is fixed (``scalable: False``)."""
        k = num_codes(self.bits, self.quantizer.bits_per_code)
        return {"hop_length": self.samples_per_step, "num_codebooks": self.freq_patches * k,
                "codebook_bits": int(self.quantizer.bits_per_code), "scalable": False}

    @torch.no_grad()
    def encode_codes(self, waveform: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Mono waveform ``(batch, 1, time)`` -> codes ``(batch, freq_patches * k,
        ceil(time / samples_per_step))``: :meth:`encode_audio`'s tokens as a time grid."""
        rows = self.codec_spec()["num_codebooks"]
        if waveform.ndim != 3 or waveform.shape[1] != 1:
            raise ValueError(f"expected a mono waveform (batch, 1, time), got shape "
                             f"{tuple(waveform.shape)}")
        if n_quantizers not in (None, rows):
            raise ValueError(f"a BSQ tokenizer decodes only from all {rows} code rows, got "
                             f"n_quantizers={n_quantizers}")
        steps = -(-waveform.shape[-1] // self.samples_per_step)
        tokens = self.encode_audio(waveform)  # one more step when the mel has a last frame
        return rearrange(tokens, "b k (t f) -> b (f k) t", f=self.freq_patches)[..., :steps]

    @torch.no_grad()
    def decode_codes(self, codes: Tensor, length: int | None = None) -> Tensor:
        """Codes ``(batch, freq_patches * k, steps)`` from :meth:`encode_codes` -> waveform
        ``(batch, 1, length)`` (default ``steps * samples_per_step``)."""
        steps, chunk = codes.shape[-1], self.encoder.max_time_patches
        whole = steps if steps <= chunk else -(-steps // chunk) * chunk
        codes = nn.functional.pad(codes, (0, whole - steps))  # chunks decode independently
        tokens = rearrange(codes, "b (f k) t -> b k (t f)", f=self.freq_patches)
        return self.decode_audio(tokens, steps * self.samples_per_step if length is None
                                 else int(length))
