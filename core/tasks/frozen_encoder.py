"""Train a decoder on the latents of a frozen encoder (``core.frozen_encoder``).

The model is :class:`~audio_core.models.frozen_encoder.FrozenEncoderAutoencoder`: its
encoder is held outside the parameters, so the engine, optimizer, checkpoints and export
see only the decoder (and optional quantizer) and the latent statistics. The step is the
autoencoder task's: ``model.losses`` of the reconstruction of the input waveform.
"""

from __future__ import annotations

from audio_core.tasks.autoencoder import AutoencoderTask


class FrozenEncoderTask(AutoencoderTask):
    """Decoder (and optional quantizer) trained on a frozen ``model.encoder``'s latents;
    model params ``latent_stats`` and ``noise_tau`` (see the model)."""

    model_type = "core.frozen_encoder"
