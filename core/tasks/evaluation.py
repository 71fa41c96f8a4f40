"""What validation computes, per kind of task (:meth:`audio_core.tasks.base.Task.evaluate`).

- :func:`evaluate_reconstruction`: reconstruction metrics (SI-SDR, mel distance, ...) of
  ``task.validation_step(batch)`` against ``batch["audio"]``, averaged over ranks, plus the
  task's :meth:`~audio_core.tasks.base.Task.validation_logs`; the first batch's first
  ``train.num_samples`` inputs and reconstructions are logged as audio.
- :func:`evaluate_generation`: a generator samples one clip per validation example, with the
  example's conditioning, a fixed seed and ``train.val_steps`` sampler steps; the real and
  generated clips are embedded with ``train.val_embedding`` (default ``core.logmel``), and
  ``fad`` is the Fréchet distance between the two sets of frame embeddings. For a
  class-conditioned model, ``class_accuracy`` is the share of generated clips that a
  nearest-class-mean classifier fitted on the real clips' embeddings (mean over frames) and
  labels assigns the class they were asked for. Each rank embeds its shard of the validation
  set; the embeddings are gathered, so every rank computes the same scores; ``clips`` is
  how many clips of all ranks were scored.

Both take ``log_audio(name, audio (channels, time), sample_rate)``, which writes an audio
example at the current step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from audio_core import distributed

log = logging.getLogger("audio_core")

LogAudio = Callable[[str, Tensor, int], None]


@torch.no_grad()
def evaluate_reconstruction(task: Any, batches: Iterable[dict[str, Any]],
                            log_audio: LogAudio) -> dict[str, float]:
    """Reconstruction metrics of ``task.validation_step`` over ``batches`` (collective: the
    averages are all-reduced), then ``task.validation_logs()``; see the module docstring."""
    from audio_core.metrics import MetricAccumulator, reconstruction_metrics

    cfg = task.cfg
    acc = MetricAccumulator()
    sr = cfg.data.sample_rate
    for i, batch in enumerate(batches):
        recon = task.validation_step(batch)
        if recon is None or "audio" not in batch:
            break
        ref = batch["audio"].to(recon.device, torch.float32)
        acc.update(reconstruction_metrics(recon, ref, sr, mask=batch["mask"].to(recon.device)),
                   weight=ref.shape[0])
        if i == 0:
            for j in range(min(cfg.train.num_samples, ref.shape[0])):
                log_audio(f"val_{j}/input", ref[j].cpu(), sr)
                log_audio(f"val_{j}/reconstruction", recon[j].cpu(), sr)
    metrics = dict(acc.compute())
    metrics.update(task.validation_logs())
    return metrics


def real_audio(model: Any, batch: dict[str, Any], length: int) -> Tensor:
    """The batch's real clips ``(batch, channels, length)`` in fp32 on the CPU: its ``audio``,
    or its pre-encoded ``latent`` decoded by the model's stage-1 model."""
    if "audio" in batch:
        audio = batch["audio"].float()
    elif "latent" in batch:
        device = next(model.parameters()).device
        latent = model.normalizer.normalize(batch["latent"].to(device, torch.float32))
        audio = model.to_audio(latent, length)
    else:
        raise KeyError(f"validation of a generator needs 'audio' or 'latent' items; the "
                       f"dataset yields {sorted(batch)}")
    audio = audio[..., :length]
    return torch.nn.functional.pad(audio, (0, length - audio.shape[-1])).cpu()


def _per_example(values: Any) -> list[Any]:
    """A batch column (a tensor ``(batch,)`` or a list) as one plain value per example."""
    return values.reshape(-1).cpu().tolist() if isinstance(values, Tensor) else list(values)


def batch_conditioning(model: Any, batch: dict[str, Any]) -> tuple[Any, Tensor | None]:
    """What ``model.generate`` is asked for, for each example of ``batch``: conditioner
    NAME -> one value per example (a conditioner reading several keys gets ``{key: value}``
    per example; ``None``: unconditional), and the class labels ``(batch,)`` of a model with
    a conditioner reading ``label``."""
    conditions = {name: keys for name, keys in model.conditions.items() if keys}
    if not conditions:
        return None, None
    missing = sorted({k for keys in conditions.values() for k in keys} - set(batch))
    if missing:
        raise KeyError(f"validation: the conditioners read {missing}, but the validation "
                       f"dataset yields {sorted(batch)}")
    out: dict[str, list[Any]] = {}
    for name, keys in conditions.items():
        columns = {key: _per_example(batch[key]) for key in keys}
        out[name] = (columns[keys[0]] if len(keys) == 1 else
                     [dict(zip(columns, row, strict=True))
                      for row in zip(*columns.values(), strict=True)])
    labels = (torch.as_tensor(batch["label"]).long().reshape(-1).cpu()
              if any("label" in keys for keys in conditions.values()) else None)
    return out, labels


def clip_embeddings(embedding: Any, clips: Tensor, sample_rate: int) -> list[Tensor]:
    """Frame embeddings ``(frames, dim)`` of each clip of ``clips`` ``(n, channels, time)``."""
    return [embedding.embed(clip, sample_rate) for clip in clips]


@torch.no_grad()
def evaluate_generation(task: Any, model: Any, batches: Iterable[dict[str, Any]],
                        log_audio: LogAudio, embedding: Any) -> dict[str, float]:
    """``fad`` (and ``class_accuracy``) of clips ``model`` generates for ``batches``;
    collective (every rank gathers once); see the module docstring."""
    from audio_core.metrics.classifier import class_accuracy
    from audio_core.metrics.frechet import fad

    cfg = task.cfg
    sr, seconds = int(model.sample_rate), float(cfg.data.segment_seconds)
    length = round(seconds * sr)
    mine: dict[str, list[Any]] = {"real": [], "fake": [], "labels": []}
    for i, batch in enumerate(batches):
        conditioning, labels = batch_conditioning(model, batch)
        real = real_audio(model, batch, length)
        seed = cfg.run.seed + 7919 * distributed.rank() + i
        fake = model.generate(conditioning, num_samples=real.shape[0], steps=cfg.train.val_steps,
                              seed=seed, seconds=seconds).float().cpu()
        if i == 0 and distributed.is_main_process():
            for j in range(min(cfg.train.num_samples, fake.shape[0])):
                log_audio(f"val_{j}/generated", fake[j], sr)
        mine["real"] += clip_embeddings(embedding, real, sr)
        mine["fake"] += clip_embeddings(embedding, fake, sr)
        if labels is not None:
            mine["labels"].append(labels)
    every = distributed.gather_objects(mine)
    real = [e for part in every for e in part["real"]]
    fake = [e for part in every for e in part["fake"]]
    if sum(e.shape[0] for e in real) < 2 or sum(e.shape[0] for e in fake) < 2:
        log.warning("validation: fewer than 2 embedding frames (%d clips): no FAD; give "
                    "data.val more examples or train.val_batches more batches", len(real))
        return {}
    metrics = {"fad": fad(torch.cat(real).numpy(), torch.cat(fake).numpy()),
               "clips": float(len(fake))}
    labels = [t for part in every for t in part["labels"]]
    if labels:
        label = torch.cat(labels)
        real_means = torch.stack([e.mean(0) for e in real])
        fake_means = torch.stack([e.mean(0) for e in fake])
        if bool((label >= 0).any()):
            metrics["class_accuracy"] = class_accuracy(real_means, label, fake_means, label)
    return metrics
