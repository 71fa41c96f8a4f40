"""The ``bsq.tokenizer`` task: waveform -> dB log-mel -> (SpecAugment) -> BSQ tokenizer.

The task trains the ``bsq.tokenizer`` model (:class:`~audio_plugin_bsq.model.BSQTokenizer`,
built by its own class from ``model.*``); it holds only training settings. Loss:
``mse_weight * MSE + mae_weight * MAE`` of the reconstructed mel against the clean one over
real frames, measured on the model's [-1, 1] scale of ``db_range`` (so the quantizer's
commitment and entropy terms keep their usual weights) and logged in dB, plus the
quantizer's loss. Validation returns the vocoded waveform, so the trainer scores SI-SDR and
mel distance and logs audio samples; the dB-spectrogram MSE/MAE of the same batches are kept
and returned by :meth:`BSQTokenizerTask.validation_logs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from audio_core import distributed
from audio_core.audio.masks import frame_mask
from audio_core.tasks.base import Task
from audio_plugin_bsq.losses import spectrogram_errors
from audio_plugin_bsq.model import BSQTokenizer
from audio_plugin_bsq.specaugment import SpecAugment


class BSQTokenizerTask(Task):
    """Trains a :class:`BSQTokenizer` (one engine, "generator") on dB log-mels.

    Params: loss weights (``mse_weight``, ``mae_weight``) and ``specaugment`` (SpecAugment
    kwargs, or ``None``; masks are filled with the model's ``db_range`` floor). The mel
    front end and the vocoder belong to the model (``model.params``, ``model.vocoder``). The
    conv modules' batch norms reduce their statistics over ranks
    (:class:`~audio_plugin_bsq.batchnorm.SyncBatchNorm1d`).
    """

    roles = ("generator",)
    model_type: ClassVar[str] = "bsq.tokenizer"
    slots: ClassVar[dict[str, bool]] = {}

    def __init__(self, *, cfg: Any, registry: Any, mse_weight: float = 1.0,
                 mae_weight: float = 0.0, specaugment: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg=cfg, registry=registry)
        self.mse_weight, self.mae_weight = float(mse_weight), float(mae_weight)
        self.specaugment_params = dict(specaugment) if specaugment else None
        self.specaugment: SpecAugment | None = None
        self._val_sums: dict[str, float] = {}

    # -- construction ---------------------------------------------------------------------
    def build_model(self) -> BSQTokenizer:
        model = super().build_model()
        if not isinstance(model, BSQTokenizer):
            raise TypeError(f"the bsq.tokenizer task trains a BSQTokenizer, but model.type "
                            f"builds {type(model).__name__}; unset model.type or set it to "
                            f"bsq.tokenizer")
        return model

    def build_modules(self) -> dict[str, nn.Module]:
        model = self.build_model()
        if self.specaugment_params is not None:
            self.specaugment = SpecAugment(**{"fill": model.db_range[0],
                                              **self.specaugment_params})
        return {"generator": model}

    # -- steps ------------------------------------------------------------------------------
    def _mels(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
        """Batch -> (dB mel ``(batch * channels, n_mels, frames)`` fp32, frame mask)."""
        engine = self.engines["generator"]
        audio = batch["audio"].to(engine.device, torch.float32)
        mel = self.model.mel_spectrogram(audio)
        mask = batch.get("mask")
        if mask is not None:
            mask = mask.to(engine.device).repeat_interleave(audio.shape[1], dim=0)
        if mask is None:
            return mel, None
        return mel, frame_mask(mask, mel.shape[-1], self.model.hop_length, align="center")

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, Tensor]:
        engine = self.engines["generator"]
        mel, mask = self._mels(batch)
        inputs = self.specaugment.train()(mel) if self.specaugment is not None else mel
        out = engine(inputs.to(engine.dtype))
        errors = spectrogram_errors(out.reconstruction, mel, mask)
        lo, hi = self.model.db_range
        unit = 2.0 / (hi - lo)  # dB -> the model's [-1, 1] scale
        quant_loss = out.loss.float()
        loss = (self.mse_weight * unit**2 * errors["mse"] + self.mae_weight * unit * errors["mae"]
                + quant_loss)
        used = self.optimize("generator", loss)
        logs = {"loss/total": loss.detach(), "loss/quantizer": quant_loss.detach(),
                "loss/mel_mse_db": errors["mse"].detach(),
                "loss/mel_mae_db": errors["mae"].detach()}
        logs.update({f"quantizer/{k}": v.detach().float() for k, v in out.metrics.items()})
        return {**logs, "skipped": torch.tensor(float(not used))}

    @torch.no_grad()
    def validation_step(self, batch: dict[str, Any]) -> Tensor:
        engine = self.engines["generator"]
        mel, mask = self._mels(batch)
        recon = engine(mel.to(engine.dtype)).reconstruction
        n = float(mel.shape[0])
        for key, value in spectrogram_errors(recon, mel, mask).items():
            self._val_sums[key] = self._val_sums.get(key, 0.0) + float(value) * n
        self._val_sums["count"] = self._val_sums.get("count", 0.0) + n
        audio = batch["audio"]
        wave = self.model.mel_to_waveform(recon, audio.shape[-1])
        return wave.reshape(audio.shape[0], audio.shape[1], -1).float()

    def validation_logs(self) -> dict[str, float]:
        """Mean dB-spectrogram ``mel_mse_db`` / ``mel_mae_db`` of the validation batches since
        the last call, averaged over ranks (collective when distributed); then reset."""
        sums, self._val_sums = self._val_sums, {}
        keys = ("mse", "mae", "count")
        totals = torch.tensor([sums.get(k, 0.0) for k in keys], dtype=torch.float64,
                              device=self.engines["generator"].device)
        distributed.all_reduce_sum_(totals)
        if totals[2] == 0:
            return {}
        return {"mel_mse_db": float(totals[0] / totals[2]),
                "mel_mae_db": float(totals[1] / totals[2])}
