"""The BSQ tokenizer model: log-mel (dB) -> transformer encoder -> BSQ -> transformer decoder.

    model = audio_core.load(export)             # or BSQTokenizer.from_config(cfg, registry)
    out = model(mel)                            # TokenizerOutput; mel: (batch, n_mels, frames) dB
    codes = model.encode_mel(mel)               # (batch, k, tokens) int64 == out.codes
    mel_hat = model.decode_mel(codes, frames)   # == out.reconstruction (eval mode)
    wave_hat = model.reconstruct(wave)          # waveform in/out: core mel + vocoder
    grid = model.encode_codes(wave)             # the Codec contract: audio-core encode/decode

It is a :class:`~audio_core.contracts.models.Codec` (and so a reconstructor), not an
autoencoder: its latents are cut into independent chunks of the encoder's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from einops import rearrange
from torch import Tensor, nn

from audio_core.audio.dsp import MelSpectrogram
from audio_core.contracts.models import Codec, CodecSpec
from audio_core.contracts.onnx import OnnxGraphs
from audio_core.contracts.records import QuantizedResult
from audio_plugin_bsq.chunks import (
    ceil_div,
    chunk_steps,
    grid_to_tokens,
    join_chunks,
    split_chunks,
    tokens_to_grid,
)
from audio_plugin_bsq.codes import num_codes
from audio_plugin_bsq.vocoder import GriffinLimVocoder


@dataclass
class TokenizerOutput:
    """The training forward of a :class:`BSQTokenizer` on a dB mel ``(batch, n_mels, frames)``.

    ``reconstruction``: dB mel, same shape, unclamped. ``latent``: encoder output ``(batch,
    width, tokens)``. ``quantized``: the quantizer's result with its ``latent`` and ``codes``
    ``(batch, k, tokens)`` laid out the same way (chunks joined, tokens time-major), its
    scalar ``loss`` and ``metrics``.
    """

    reconstruction: Tensor
    latent: Tensor
    quantized: QuantizedResult

    @property
    def codes(self) -> Tensor:
        """int64 ``(batch, k, tokens)``."""
        return self.quantized.codes

    @property
    def loss(self) -> Tensor:
        """The quantizer's weighted auxiliary loss (scalar)."""
        return self.quantized.loss

    @property
    def metrics(self) -> dict[str, Tensor]:
        return self.quantized.metrics


#: Mel front-end settings a vocoder must share with the model when it declares them.
_VOCODER_GEOMETRY = ("sample_rate", "n_fft", "hop_length", "n_mels")


class BSQTokenizer(Codec):
    """Encoder, quantizer and decoder on dB log-mels, plus the mel front end and a vocoder.

    dB values in ``db_range`` are mapped linearly to [-1, 1] before the encoder and back
    after the decoder. Spectrograms longer than the encoder's ``max_time_patches`` are cut
    into independent chunks of that many time patches (``encode_mel`` and ``decode_mel``
    agree). ``vocoder`` maps a dB mel ``(batch, n_mels, frames)`` to a waveform ``(batch, 1,
    time)`` (default ``bsq.griffin_lim``). Mono: ``channels`` is 1 (a multichannel
    input is handled as that many mono signals).
    """

    slots: ClassVar[dict[str, bool]] = {"encoder": True, "quantizer": True, "decoder": True,
                                        "vocoder": False}

    def __init__(self, encoder: nn.Module, quantizer: nn.Module, decoder: nn.Module, *,
                 sample_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160,
                 n_mels: int = 128, db_range: Sequence[float] = (-80.0, 0.0),
                 vocoder: nn.Module | None = None) -> None:
        super().__init__(sample_rate=sample_rate, channels=1)
        if encoder.n_mels != n_mels or decoder.n_mels != n_mels:
            raise ValueError(f"encoder/decoder n_mels ({encoder.n_mels}, {decoder.n_mels}) "
                             f"differ from the mel front end's {n_mels}")
        if len(db_range) != 2 or not db_range[0] < db_range[1]:
            raise ValueError(f"db_range must be [low, high] with low < high, got {db_range}")
        self.encoder, self.quantizer, self.decoder = encoder, quantizer, decoder
        self.n_fft, self.hop_length, self.n_mels = int(n_fft), int(hop_length), int(n_mels)
        self.db_range = (float(db_range[0]), float(db_range[1]))
        self.mel = MelSpectrogram(sample_rate, n_fft, hop_length, n_mels=n_mels, power=2.0,
                                  log="db", clamp=self.db_range)
        if vocoder is None:
            vocoder = GriffinLimVocoder(sample_rate=sample_rate, n_fft=n_fft,
                                        hop_length=hop_length, n_mels=n_mels)
        geometry = {"sample_rate": self.sample_rate, "n_fft": self.n_fft,
                    "hop_length": self.hop_length, "n_mels": self.n_mels}
        wrong = {k: getattr(vocoder, k) for k in _VOCODER_GEOMETRY
                 if getattr(vocoder, k, geometry[k]) != geometry[k]}
        if wrong:
            raise ValueError(f"vocoder {type(vocoder).__name__} has {wrong}, but the model's "
                             f"mel front end has {geometry}")
        self.vocoder = vocoder

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False, n_fft: int = 1024,
                    hop_length: int = 160, n_mels: int = 128,
                    db_range: Sequence[float] = (-80.0, 0.0)) -> BSQTokenizer:
        """``model.encoder`` / ``model.decoder`` (given ``n_mels`` and ``max_frames``, the
        mel frames of one ``data.segment_seconds`` segment), ``model.quantizer`` (given the
        encoder's ``dim``) and ``model.vocoder`` (default ``bsq.griffin_lim``; given the mel
        front end). ``model.params`` are the mel front end's settings."""
        from audio_core.models.build import build_slot

        sr = int(cfg.data.sample_rate)
        max_frames = 1 + round(cfg.data.segment_seconds * sr) // int(hop_length)
        spec = {"n_mels": n_mels, "max_frames": max_frames, "sample_rate": sr}
        encoder = _required(build_slot(cfg, registry, "encoder", **spec), "encoder")
        quantizer = _required(build_slot(cfg, registry, "quantizer", dim=encoder.dim),
                              "quantizer")
        decoder = _required(build_slot(cfg, registry, "decoder", **spec), "decoder")
        front_end = {"sample_rate": sr, "n_fft": n_fft, "hop_length": hop_length,
                     "n_mels": n_mels}
        vocoder = build_slot(cfg, registry, "vocoder", **front_end)
        return cls(encoder, quantizer, decoder, db_range=db_range, vocoder=vocoder, **front_end)

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
        return chunk_steps(ceil_div(frames, self.patch_time), self.encoder.max_time_patches)

    def _to_chunks(self, x: Tensor) -> tuple[Tensor, int]:
        """Normalised mel ``(b, m, frames)`` -> ``(b * chunks, m, chunk frames)``, chunks."""
        steps, chunks = self._steps(x.shape[-1])
        x = nn.functional.pad(x, (0, steps * self.patch_time - x.shape[-1]), value=-1.0)
        return split_chunks(x, chunks), chunks

    def _encode_latent(self, mel_db: Tensor) -> tuple[Tensor, int]:
        """dB mel -> encoder output ``(batch * chunks, width, tokens per chunk)``, chunks."""
        x, chunks = self._to_chunks(self.normalize(mel_db))
        return self.encoder(x.to(self._dtype())), chunks

    def _decode_latent(self, latent: Tensor, chunks: int, frames: int | None) -> Tensor:
        x = self.denormalize(self.decoder(latent).float())
        x = join_chunks(x, chunks)
        return x if frames is None else x[..., :frames]

    def _dtype(self) -> torch.dtype:
        return self.encoder.patch.proj.weight.dtype

    # -- mel-level API ----------------------------------------------------------------------
    def forward(self, mel_db: Tensor) -> TokenizerOutput:
        """dB mel ``(batch, n_mels, frames)`` -> :class:`TokenizerOutput` (the training
        forward)."""
        latent, chunks = self._encode_latent(mel_db)
        result = self.quantizer(latent)
        recon = self._decode_latent(result.latent, chunks, mel_db.shape[-1])

        def join(x: Tensor) -> Tensor:
            return join_chunks(x, chunks)

        return TokenizerOutput(recon, join(latent), replace(result, latent=join(result.latent),
                                                            codes=join(result.codes)))

    @torch.no_grad()
    def encode_mel(self, mel_db: Tensor) -> Tensor:
        """dB mel ``(batch, n_mels, frames)`` -> codes ``(batch, k, tokens)`` int64, tokens
        time-major (``freq_patches`` per time step)."""
        latent, chunks = self._encode_latent(mel_db)
        return join_chunks(self.quantizer.encode(latent), chunks)

    @torch.no_grad()
    def decode_mel(self, codes: Tensor, frames: int | None = None) -> Tensor:
        """Codes ``(batch, k, tokens)`` -> dB mel ``(batch, n_mels, frames)`` (default: every
        frame the tokens cover)."""
        steps = codes.shape[-1] // self.freq_patches
        padded, chunks = self._steps(steps * self.patch_time)
        if padded != steps:
            raise ValueError(f"{steps} time steps cannot be decoded: sequences longer than "
                             f"{self.encoder.max_time_patches} steps must come in whole chunks")
        return self._decode_latent(self.quantizer.decode(split_chunks(codes, chunks)), chunks,
                                   frames)

    # -- waveforms ----------------------------------------------------------------------------
    def mel_spectrogram(self, waveform: Tensor) -> Tensor:
        """Waveform ``(batch, time)`` or ``(batch, channels, time)`` -> dB mel
        ``(batch * channels, n_mels, 1 + time // hop_length)``, fp32, clamped to ``db_range``."""
        if waveform.ndim == 3:
            waveform = waveform.reshape(-1, waveform.shape[-1])  # (b c) t
        return self.mel(waveform.float())

    def mel_to_waveform(self, mel_db: Tensor, length: int | None = None,
                        phase: Tensor | None = None) -> Tensor:
        """dB mel -> waveform ``(batch, 1, time)`` through the vocoder (clamped first);
        ``phase``: a Griffin-Lim vocoder's initial phases (default: its seeded draw)."""
        mel = mel_db.float().clamp(*self.db_range)
        return self.vocoder(mel, length) if phase is None else \
            self.vocoder(mel, length, phase=phase)

    @torch.no_grad()
    def encode_audio(self, waveform: Tensor) -> Tensor:
        """Waveform -> codes ``(batch * channels, k, tokens)``."""
        return self.encode_mel(self.mel_spectrogram(waveform))

    @torch.no_grad()
    def decode_audio(self, codes: Tensor, length: int | None = None,
                     phase: Tensor | None = None) -> Tensor:
        """Codes -> waveform ``(batch, 1, length)`` (frames implied by ``length``)."""
        frames = None if length is None else 1 + length // self.hop_length
        return self.mel_to_waveform(self.decode_mel(codes, frames), length, phase)

    @torch.no_grad()
    def reconstruct(self, waveform: Tensor) -> Tensor:
        """Waveform ``(batch, channels, time)`` (or ``(batch, time)``) -> waveform of the same
        shape: mel, tokens, mel, vocoder; each channel on its own."""
        squeeze = waveform.ndim == 2
        wave = waveform[:, None] if squeeze else waveform
        recon = self(self.mel_spectrogram(wave)).reconstruction
        out = self.mel_to_waveform(recon, wave.shape[-1])
        out = rearrange(out, "(b c) 1 t -> b c t", c=wave.shape[1])
        return out[:, 0] if squeeze else out

    # -- the Codec contract (audio-core encode/decode/reconstruct, token files) --------------
    @property
    def samples_per_step(self) -> int:
        """Waveform samples per time step: ``hop_length * patch_time``."""
        return self.hop_length * self.patch_time

    def codec_spec(self) -> CodecSpec:
        """One code frame per time step with ``freq_patches * k`` rows (frequency patch
        major, then the ``k`` codes of its token), ``bits_per_code`` bits each. Every row is
        needed to decode: the bitrate is fixed (``scalable=False``)."""
        k = num_codes(self.bits, self.quantizer.bits_per_code)
        return CodecSpec(hop_length=self.samples_per_step, num_codebooks=self.freq_patches * k,
                         codebook_bits=int(self.quantizer.bits_per_code), scalable=False)

    @torch.no_grad()
    def encode_codes(self, waveform: Tensor, n_quantizers: int | None = None) -> Tensor:
        """Mono waveform ``(batch, 1, time)`` -> codes ``(batch, freq_patches * k,
        ceil(time / samples_per_step))``: :meth:`encode_audio`'s tokens as a time grid."""
        rows = self.codec_spec().num_codebooks
        if waveform.ndim != 3 or waveform.shape[1] != 1:
            raise ValueError(f"expected a mono waveform (batch, 1, time), got shape "
                             f"{tuple(waveform.shape)}")
        if n_quantizers not in (None, rows):
            raise ValueError(f"a BSQ tokenizer decodes only from all {rows} code rows, got "
                             f"n_quantizers={n_quantizers}")
        steps = ceil_div(waveform.shape[-1], self.samples_per_step)
        tokens = self.encode_audio(waveform)  # one more step when the mel has a last frame
        return tokens_to_grid(tokens, self.freq_patches)[..., :steps]

    @torch.no_grad()
    def decode_codes(self, codes: Tensor, length: int | None = None) -> Tensor:
        """Codes ``(batch, freq_patches * k, steps)`` from :meth:`encode_codes` -> waveform
        ``(batch, 1, length)`` (default ``steps * samples_per_step``)."""
        steps = codes.shape[-1]
        return self.decode_audio(self.codes_to_tokens(codes), steps * self.samples_per_step
                                 if length is None else int(length))

    def codes_to_tokens(self, codes: Tensor) -> Tensor:
        """Codes ``(batch, freq_patches * k, steps)`` -> tokens ``(batch, k, tokens)``, padded
        to whole chunks (chunks decode independently)."""
        steps = codes.shape[-1]
        whole, _ = chunk_steps(steps, self.encoder.max_time_patches)
        codes = nn.functional.pad(codes, (0, whole - steps))
        return grid_to_tokens(codes, self.freq_patches)

    def onnx_graphs(self) -> OnnxGraphs:
        """``audio-core export --format onnx``: codes graphs (see :mod:`audio_plugin_bsq.onnx`)."""
        from audio_plugin_bsq.onnx import onnx_graphs

        return onnx_graphs(self)


def _required(module: nn.Module | None, slot: str) -> nn.Module:
    if module is None:
        from audio_core.errors import ConfigError

        raise ConfigError(f"model.{slot} is required by model bsq.tokenizer "
                          f"(it needs model.encoder, model.quantizer and model.decoder)",
                          f"model.{slot}")
    return module
