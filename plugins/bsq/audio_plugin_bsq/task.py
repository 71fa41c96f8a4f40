"""The ``bsq.tokenizer`` task: waveform -> dB log-mel -> (SpecAugment) -> BSQ tokenizer.

Loss: ``mse_weight * MSE + mae_weight * MAE`` of the reconstructed mel against the clean one
over real frames, measured on the model's [-1, 1] scale of ``db_range`` (so the quantizer's
commitment and entropy terms keep their usual weights) and logged in dB. Validation returns
the Griffin-Lim (or configured vocoder) waveform, so the trainer scores SI-SDR and mel
distance and logs audio samples; the dB-spectrogram MSE/MAE of the same batches are kept
and returned by :meth:`BSQTokenizerTask.validation_logs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from audio_core.config.schema import ComponentConfig
from audio_core.tasks.base import Task
from audio_plugin_bsq.batchnorm import world_size
from audio_plugin_bsq.losses import frame_mask, spectrogram_errors
from audio_plugin_bsq.model import BSQTokenizer
from audio_plugin_bsq.specaugment import SpecAugment


def _component(value: Any) -> ComponentConfig | None:
    if value is None or isinstance(value, ComponentConfig):
        return value
    if not isinstance(value, Mapping) or "name" not in value:
        raise ValueError(f"task.params.vocoder must be {{name: ..., params: {{...}}}}, "
                         f"got {value!r}")
    return ComponentConfig(name=value["name"], params=dict(value.get("params") or {}))


class BSQTokenizerTask(Task):
    """Trains ``model.encoder`` / ``model.quantizer`` / ``model.decoder`` (one engine,
    "generator") as a :class:`BSQTokenizer` on dB log-mels.

    Params: mel front end (``n_fft``, ``hop_length``, ``n_mels``, ``db_range``), loss
    weights (``mse_weight``, ``mae_weight``), ``specaugment`` (SpecAugment kwargs, or
    ``None``) and ``vocoder`` (a decoder-kind component ``{name, params}``; default
    ``bsq.griffin_lim``). The conv modules' batch norms reduce their statistics over ranks
    (:class:`~audio_plugin_bsq.batchnorm.SyncBatchNorm1d`).
    """

    roles = ("generator",)

    def __init__(self, *, cfg: Any, registry: Any, n_fft: int = 1024, hop_length: int = 160,
                 n_mels: int = 128, db_range: Sequence[float] = (-80.0, 0.0),
                 mse_weight: float = 1.0, mae_weight: float = 0.0,
                 specaugment: Mapping[str, Any] | None = None,
                 vocoder: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg=cfg, registry=registry)
        self.n_fft, self.hop_length, self.n_mels = int(n_fft), int(hop_length), int(n_mels)
        self.db_range = (float(db_range[0]), float(db_range[1]))
        self.mse_weight, self.mae_weight = float(mse_weight), float(mae_weight)
        self.specaugment = (SpecAugment(**{"fill": self.db_range[0], **specaugment})
                            if specaugment else None)
        self.vocoder_ref = _component(vocoder) or ComponentConfig(name="bsq.griffin_lim")
        self._val_sums: dict[str, float] = {}

    # -- construction ---------------------------------------------------------------------
    @property
    def max_frames(self) -> int:
        """Mel frames of one training segment (``1 + samples // hop_length``)."""
        samples = round(self.cfg.data.segment_seconds * self.cfg.data.sample_rate)
        return 1 + samples // self.hop_length

    def build_model(self) -> BSQTokenizer:
        m = self.cfg.model
        if m.encoder is None or m.quantizer is None or m.decoder is None:
            raise ValueError("the bsq.tokenizer task needs model.encoder, model.quantizer "
                             "and model.decoder")
        sr = self.cfg.data.sample_rate
        ctx = {"n_mels": self.n_mels, "max_frames": self.max_frames, "sample_rate": sr}
        encoder = self.build(m.encoder, "encoder", "model.encoder", **ctx)
        quantizer = self.build(m.quantizer, "quantizer", "model.quantizer", dim=encoder.dim)
        decoder = self.build(m.decoder, "decoder", "model.decoder", **ctx)
        vocoder = self.build(self.vocoder_ref, "decoder", "task.params.vocoder", sample_rate=sr,
                             n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels)
        return BSQTokenizer(encoder, quantizer, decoder, sample_rate=sr, n_fft=self.n_fft,
                            hop_length=self.hop_length, n_mels=self.n_mels,
                            db_range=self.db_range, vocoder=vocoder)

    def build_modules(self) -> dict[str, nn.Module]:
        return {"generator": self.build_model()}

    def build_export_module(self) -> nn.Module:
        return self.build_model()

    # -- steps ------------------------------------------------------------------------------
    def _mels(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
        """Batch -> (dB mel ``(batch * channels, n_mels, frames)`` fp32, frame mask)."""
        engine = self.engines["generator"]
        audio = batch["audio"].to(engine.device, torch.float32)
        mel = engine.module.mel_spectrogram(audio)
        mask = batch.get("mask")
        if mask is not None:
            mask = mask.to(engine.device).repeat_interleave(audio.shape[1], dim=0)
        return mel, frame_mask(mask, mel.shape[-1], self.hop_length)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        engine = self.engines["generator"]
        mel, mask = self._mels(batch)
        inputs = self.specaugment.train()(mel) if self.specaugment is not None else mel
        recon, quant_loss, info = engine(inputs.to(engine.dtype))
        errors = spectrogram_errors(recon, mel, mask)
        unit = 2.0 / (self.db_range[1] - self.db_range[0])  # dB -> the model's [-1, 1] scale
        loss = (self.mse_weight * unit**2 * errors["mse"] + self.mae_weight * unit * errors["mae"]
                + quant_loss.float())
        used = self.optimize("generator", loss)
        logs = {"loss/total": loss.detach(), "loss/quantizer": quant_loss.detach().float(),
                "loss/mel_mse_db": errors["mse"].detach(),
                "loss/mel_mae_db": errors["mae"].detach()}
        logs.update({f"quantizer/{k}": v.detach().float() for k, v in info["metrics"].items()})
        return {**logs, "skipped": torch.tensor(float(not used))}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> Tensor:
        engine = self.engines["generator"]
        mel, mask = self._mels(batch)
        recon, _, _ = engine(mel.to(engine.dtype))
        n = float(mel.shape[0])
        for key, value in spectrogram_errors(recon, mel, mask).items():
            self._val_sums[key] = self._val_sums.get(key, 0.0) + float(value) * n
        self._val_sums["count"] = self._val_sums.get("count", 0.0) + n
        audio = batch["audio"]
        wave = engine.module.mel_to_waveform(recon, audio.shape[-1])
        return wave.reshape(audio.shape[0], audio.shape[1], -1).float()

    def validation_logs(self) -> dict[str, float]:
        """Mean dB-spectrogram ``mel_mse_db`` / ``mel_mae_db`` of the validation batches since
        the last call, averaged over ranks (collective when distributed); then reset."""
        sums, self._val_sums = self._val_sums, {}
        keys = ("mse", "mae", "count")
        totals = torch.tensor([sums.get(k, 0.0) for k in keys], dtype=torch.float64,
                              device=self.engines["generator"].device)
        if world_size() > 1:
            torch.distributed.all_reduce(totals)
        if totals[2] == 0:
            return {}
        return {"mel_mse_db": float(totals[0] / totals[2]),
                "mel_mae_db": float(totals[1] / totals[2])}
