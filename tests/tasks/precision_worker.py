"""Worker for tests/tasks/test_task_precision.py: ``train.precision`` on 2 CPU ranks.

``python -m torch.distributed.run --nproc_per_node 2 precision_worker.py OUT SCENARIO ...``;
rank 0 writes ``OUT/<scenario>.pt``. Not collected by pytest (no ``test_`` prefix).

* ``bf16``: one bf16 ZeRO-2 step of every core task (adversarial codec with mel/STFT losses
  and an STFT discriminator, frozen encoder, diffusion; BSQ when its plugin is installed),
  recording, through hooks, the dtype and autocast state inside each STFT and model layer.
* ``fp16``: ZeRO-2 fp16 with the accelerator's fp16 check bypassed (DeepSpeed refuses fp16
  on CPUs whose oneDNN does not report it, but its loss scaler and overflow check run):
  an inf gradient injected on rank 1 only, then a clean step, save, and a fresh engine
  that loads the checkpoint.
* ``compile``: ``train.compile: true`` (inductor) for 2 steps of the autoencoder task.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from task_worker import CODEC, SAMPLES, build, diffusion_cfg, make_cfg, write_stage1

SPECTRAL = [{"name": "core.l1"}, {"name": "core.mel", "params": {
    "n_ffts": [64, 128], "n_mels": [16, 32]}},
    {"name": "core.mrstft", "params": {"n_ffts": [32, 64]}}]
STFT_D = {"name": "core.msstft", "params": {"n_ffts": [64, 32], "width": 4, "max_width": 8}}


class Probe:
    """Records ``(where, input dtype, autocast on)`` at every STFT call and model layer."""

    def __init__(self) -> None:
        self.stft: list[tuple[str, str, bool]] = []
        self.layers: list[tuple[str, str, bool]] = []
        self._undo: list = []

    def _wrap_stft(self, module, attr: str) -> None:
        """Record each call of ``module.<attr>`` under the module's name."""
        original = getattr(module, attr)

        def recording(x, *args, **kwargs):
            self.stft.append((module.__name__, str(x.dtype), torch.is_autocast_enabled("cpu")))
            return original(x, *args, **kwargs)

        setattr(module, attr, recording)
        self._undo.append(lambda: setattr(module, attr, original))

    def __enter__(self) -> Probe:
        import importlib

        import audio_core.audio.dsp.modules as dsp_modules

        # the package re-exports the function stft under the submodule's name
        dsp_stft = importlib.import_module("audio_core.audio.dsp.stft")
        import audio_core.components.discriminators as discriminators
        import audio_core.components.spectral_losses as spectral_losses

        # dsp_stft: the discriminators' stacked_spectrogram calls stft there
        for module in (spectral_losses, discriminators, dsp_modules, dsp_stft):
            if hasattr(module, "stft"):
                self._wrap_stft(module, "stft")
        return self

    def watch(self, root: torch.nn.Module, role: str) -> None:
        """Forward pre-hooks on every conv/linear layer of ``root``."""
        for name, layer in root.named_modules():
            if isinstance(layer, torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.Linear):
                handle = layer.register_forward_pre_hook(
                    lambda m, args, n=f"{role}.{name}": self.layers.append(
                        (n, str(m.weight.dtype), torch.is_autocast_enabled("cpu"))))
                self._undo.append(handle.remove)

    def __exit__(self, *exc) -> None:
        for undo in reversed(self._undo):
            undo()


def batch_of(rank: int, micro: int = 2, channels: int = 1, samples: int = SAMPLES) -> dict:
    g = torch.Generator().manual_seed(100 + rank)
    return {"audio": 0.5 * torch.randn(micro, channels, samples, generator=g),
            "mask": torch.ones(micro, samples)}


def one_step(cfg, rank: int, batch: dict | None = None) -> dict:
    task, engines, _ = build(cfg)
    with Probe() as probe:
        for role, engine in engines.items():
            probe.watch(engine.module, role)
        logs = task.train_step(batch or batch_of(rank, cfg.data.batch_size, cfg.data.channels,
                                                 int(cfg.data.segment_seconds
                                                     * cfg.data.sample_rate)), 0)
    return {"loss": float(logs["loss/total"]), "skipped": float(logs["skipped"]),
            "dtypes": {r: str(e.dtype) for r, e in engines.items()},
            "steps": {r: e.global_steps for r, e in engines.items()},
            "stft": probe.stft, "layers": probe.layers}


def scenario_bf16(out: Path, rank: int, world: int) -> None:
    result = {}
    gan = make_cfg({"name": "core.adversarial", "params": {}}, stages=(2, 2),
                   train__precision="bf16", model__losses=SPECTRAL,
                   model__discriminators=[STFT_D])
    result["adversarial"] = one_step(gan, rank)
    frozen = make_cfg({"name": "core.frozen_encoder", "params": {}}, stages=(2, 2),
                      train__precision="bf16", model__quantizer={"name": "core.identity"},
                      model__losses=SPECTRAL)
    result["frozen_encoder"] = one_step(frozen, rank)
    stage1 = out / "bf16_stage1"
    if rank == 0:
        write_stage1(stage1)
    dist.barrier()
    result["diffusion"] = one_step(diffusion_cfg(stage1, precision="bf16"), rank)
    try:
        from audio_core.config import load_config

        bsq = load_config("bsq.tiny", overrides=[
            "train.precision=bf16", "deepspeed.zero_stage=2", "data.batch_size=2",
            "data.segment_seconds=0.25", "train.trackers=[jsonl]",
            "model.encoder.params.depth=1", "model.decoder.params.depth=1"])
    except Exception as exc:  # the bsq plugin is not installed
        result["bsq"] = {"missing": repr(exc)}
    else:
        result["bsq"] = one_step(bsq, rank)
    if rank == 0:
        torch.save(result, out / "bf16.pt")


def _fp16_cfg(**extra):
    from audio_core.config import load_config

    return load_config({
        "data": {"sample_rate": 8000, "channels": 1, "segment_seconds": SAMPLES / 8000,
                 "batch_size": 2},
        "model": {"encoder": CODEC, "decoder": CODEC, "losses": [{"name": "core.l1"}]},
        "task": {"name": "core.autoencoder"},
        "train": {"precision": "fp16", "max_steps": 10, "trackers": ["jsonl"],
                  "optimizer": {"lr": 1e-3}, "val_every": 0, "checkpoint_every": 0},
        "deepspeed": {"zero_stage": 2, **extra}})


def scenario_fp16(out: Path, rank: int, world: int) -> None:
    from deepspeed.accelerator import get_accelerator

    get_accelerator().is_fp16_supported = lambda: True  # see the module docstring
    cfg = _fp16_cfg()
    task, engines, _ = build(cfg)
    engine = engines["generator"]
    result = {"initial_scale": engine.loss_scale, "ds_fp16": dict(engine.ds_config["fp16"])}
    param = next(p for p in engine.module.parameters() if p.requires_grad)
    before = copy.deepcopy(engine.full_state_dict())
    handle = param.register_hook(lambda g: torch.full_like(g, math.inf)) if rank == 1 else None
    logs = task.train_step(batch_of(rank), 0)
    if handle is not None:
        handle.remove()
    after = engine.full_state_dict()
    result["overflow"] = {
        "loss_finite": math.isfinite(float(logs["loss/total"])),
        "applied": engine.last_step_applied, "skipped_steps": engine.skipped_steps,
        "scale": engine.loss_scale,
        "unchanged": all(torch.equal(before[k], after[k]) for k in before)}
    task.train_step(batch_of(rank), 1)
    after_clean = engine.full_state_dict()
    result["clean"] = {"applied": engine.last_step_applied, "skipped_steps": engine.skipped_steps,
                       "scale": engine.loss_scale,
                       "changed": any(not torch.equal(after[k], after_clean[k]) for k in after)}
    engine.save(out / "fp16_ckpt", "step2")
    _, fresh, _ = build(cfg, seed=1)
    fresh_engine = fresh["generator"]
    result["fresh_scale"] = fresh_engine.loss_scale
    fresh_engine.load(out / "fp16_ckpt", "step2")
    result["resumed_scale"] = fresh_engine.loss_scale
    result["resumed_skipped_steps"] = fresh_engine.skipped_steps
    gathered = [None] * world
    dist.all_gather_object(gathered, result)
    if rank == 0:
        torch.save(gathered, out / "fp16.pt")


def scenario_compile(out: Path, rank: int, world: int) -> None:
    cfg = make_cfg({"name": "core.autoencoder", "params": {}}, stages=(2, 2),
                   train__compile=True)
    task, engines, _ = build(cfg)
    engine = engines["generator"]
    losses = [float(task.train_step(batch_of(rank), s)["loss/total"]) for s in range(2)]
    keys = sorted(engine.module.state_dict())
    result = {"losses": losses, "compiled": engine.module._compiled_call_impl is not None,
              "keys_plain": not any("_orig_mod" in k for k in keys),
              "steps": engine.global_steps}
    if rank == 0:
        torch.save(result, out / "compile.pt")


def main() -> None:
    from audio_core import distributed

    out = Path(sys.argv[1])
    distributed.init_distributed()
    rank, world = dist.get_rank(), dist.get_world_size()
    for name in sys.argv[2:]:
        globals()[f"scenario_{name}"](out, rank, world)
        dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
