"""``rae.autoencoder``: the RAE stage-1 model, a frozen representation encoder + a trained
decoder, on audio-core's ``core.frozen_encoder`` model.

What it adds to :class:`~audio_core.models.frozen_encoder.FrozenEncoderAutoencoder` (which
holds the encoder outside the weights, rebuilds it from the config at load, normalises the
latent with ``latent_stats`` and adds training-only noise ``noise_tau``):

- the decoder is built with the encoder's geometry as context: ``dim``, ``hop_length``,
  ``window`` (tokens per encoder window) and ``tokens_per_step``; values set by hand in
  ``model.decoder.params`` must agree, else a config error;
- a decoder with ``output: spectrogram`` is vocoded by ``model.vocoder`` (default
  ``rae.griffin_lim`` on the decoder's mel settings), held frozen like the encoder; in the
  training forward the predicted and target log-mels are kept in ``output.intermediates``
  (``decoder.mel``, ``decoder.mel_target``) for the ``rae.mel_l1`` loss.

Trained with ``task: core.frozen_encoder`` (or ``core.adversarial`` for an adversarial
decoder), ``model.type: rae.autoencoder``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from audio_core.audio.transforms import fit_length
from audio_core.contracts.onnx import OnnxGraphs
from audio_core.errors import ConfigError
from audio_core.models.autoencoder import AutoencoderOutput, audio_context
from audio_core.models.frozen_encoder import FrozenEncoderAutoencoder, build_seeded

GEOMETRY = ("dim", "hop_length", "window", "tokens_per_step")


def encoder_geometry(encoder: nn.Module) -> dict[str, Any]:
    """What the decoder must know of ``encoder``: ``dim``, ``hop_length``, ``window`` (tokens
    per window or ``None``), ``tokens_per_step``."""
    return {"dim": int(encoder.dim), "hop_length": int(encoder.hop_length),
            "window": getattr(encoder, "window_frames", None),
            "tokens_per_step": int(getattr(encoder, "tokens_per_step", 1))}


def check_geometry(decoder: nn.Module, geometry: dict[str, Any]) -> None:
    for key in GEOMETRY:
        if hasattr(decoder, key) and getattr(decoder, key) != geometry[key]:
            raise ConfigError(f"model.decoder.params.{key}={getattr(decoder, key)!r} does not "
                              f"match the encoder's {key} {geometry[key]!r}; remove it (the "
                              f"model passes the encoder's value)", f"model.decoder.params.{key}")


class RAEAutoencoder(FrozenEncoderAutoencoder):
    """Waveform ``(batch, channels, time)`` -> frozen encoder -> normalised latent ``(batch,
    dim, ceil(time / hop_length))`` -> decoder -> waveform (directly, or log-mel -> frozen
    vocoder). See the module docstring."""

    slots: ClassVar[dict[str, bool]] = {"encoder": True, "decoder": True, "quantizer": False,
                                        "vocoder": False}

    def __init__(self, encoder: nn.Module, decoder: nn.Module,
                 quantizer: nn.Module | None = None, vocoder: nn.Module | None = None, *,
                 sample_rate: int, channels: int | None = None,
                 noise_tau: float = 0.0) -> None:
        super().__init__(encoder, decoder, quantizer, sample_rate=sample_rate,
                         channels=channels, noise_tau=noise_tau)
        self.spectrogram_output = getattr(decoder, "output", "waveform") == "spectrogram"
        if self.spectrogram_output and vocoder is None:
            raise ValueError("a decoder with spectrogram output needs a vocoder")
        if vocoder is not None:
            self.add_frozen("vocoder", vocoder)

    @classmethod
    def from_config(cls, cfg: Any, registry: Any, loading: bool = False,
                    latent_stats: str | None = None,
                    noise_tau: float = 0.0) -> RAEAutoencoder:
        from audio_core.models.build import build_slot

        ctx = audio_context(cfg)
        encoder = build_seeded(cfg.run.seed,
                               lambda: build_slot(cfg, registry, "encoder", **ctx))
        geometry = encoder_geometry(encoder)
        decoder = build_slot(cfg, registry, "decoder", **ctx, **geometry)
        check_geometry(decoder, geometry)
        model = cls(encoder, decoder, build_slot(cfg, registry, "quantizer", **ctx),
                    cls.build_vocoder(cfg, registry, decoder),
                    sample_rate=cfg.data.sample_rate, channels=cfg.data.channels,
                    noise_tau=noise_tau)
        if latent_stats is not None and not loading:
            model.normalizer.load(latent_stats)
        return model

    @staticmethod
    def build_vocoder(cfg: Any, registry: Any, decoder: nn.Module) -> nn.Module | None:
        """``model.vocoder`` on the decoder's mel settings (default ``rae.griffin_lim``);
        ``None`` for a waveform decoder (then ``model.vocoder`` must be unset)."""
        from audio_core.models.build import build_slot

        if getattr(decoder, "output", "waveform") != "spectrogram":
            if cfg.model.vocoder is not None:
                raise ConfigError("model.vocoder is set but the decoder outputs a waveform "
                                  "(set model.decoder.params.output: spectrogram, or remove "
                                  "model.vocoder)", "model.vocoder")
            return None
        mel = {"sample_rate": cfg.data.sample_rate, "n_fft": decoder.n_fft,
               "hop_length": decoder.mel_hop, "n_mels": decoder.n_mels}
        vocoder = build_slot(cfg, registry, "vocoder", **mel)
        if vocoder is None:
            from audio_plugin_rae.vocoder import GriffinLimVocoder

            return GriffinLimVocoder(**mel)
        wrong = {k: getattr(vocoder, k) for k in mel if getattr(vocoder, k, v := mel[k]) != v}
        if wrong:
            raise ConfigError(f"model.vocoder works on {wrong}, but the decoder's mel is {mel}",
                              "model.vocoder")
        return vocoder

    # -- decoding ---------------------------------------------------------------------
    @torch.no_grad()
    def vocode(self, log_mel: Tensor, length: int, phase: Tensor | None = None) -> Tensor:
        """Log-mel ``(batch, n_mels, frames)`` -> waveform ``(batch, channels, length)``,
        fp32, through the frozen vocoder (no gradients); ``phase``: a Griffin-Lim vocoder's
        initial phases (default: its seeded draw)."""
        vocoder = self.frozen_on("vocoder", log_mel.device)
        wave = vocoder(log_mel.float(), length) if phase is None else \
            vocoder(log_mel.float(), length, phase=phase)
        return fit_length(wave, length).expand(-1, self.channels, -1)

    def decode(self, latent: Tensor, length: int | None = None) -> Tensor:
        out = self.decoder(latent)
        if not self.spectrogram_output:
            return fit_length(out, length)
        return self.vocode(out, length or latent.shape[-1] * self.hop_length)

    def onnx_graphs(self) -> OnnxGraphs:
        """``audio-core export --format onnx`` (see :mod:`audio_plugin_rae.onnx`)."""
        from audio_plugin_rae.onnx import onnx_graphs

        return onnx_graphs(self)

    def forward(self, waveform: Tensor) -> AutoencoderOutput:
        """The training forward (see :meth:`AudioAutoencoder.forward`); with a spectrogram
        decoder, ``intermediates`` also hold ``decoder.mel`` (predicted log-mel, with
        gradients) and ``decoder.mel_target`` (the input's log-mel)."""
        if not self.spectrogram_output:
            return super().forward(waveform)
        latent = self.encode_latent(waveform)
        augmented = self.augment(latent)
        quantized = self.bottleneck(augmented)
        mel = self.decoder(quantized.latent if quantized is not None else augmented)
        return AutoencoderOutput(self.vocode(mel, waveform.shape[-1]), latent, quantized, {
            **self._intermediates(), "decoder.mel": mel,
            "decoder.mel_target": self.decoder.target_mel(waveform, mel.shape[-1])})
