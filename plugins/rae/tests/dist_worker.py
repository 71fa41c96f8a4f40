"""2-rank worker for test_distributed.py (run under torch.distributed.run; not collected).

``python dist_worker.py OUT``, one job for both stages (one start-up of torch, DeepSpeed
and transformers per rank):

1. ``rae.wav2vec2_tiny`` (decoder shrunk, 0.5 s crops, synthetic data) under ZeRO-2 for 4
   steps, resumed to 6, exported to ``OUT/stage1_export``; each rank records what the
   frozen encoder, the optimizer and the checkpoints hold;
2. ``audio-core latents`` of the class folder ``OUT/clips`` on both ranks;
3. ``rae.dit_tiny`` (shrunk) under ZeRO-2 on those latents, 4 steps, resumed to 6,
   exported to ``OUT/stage2_export``.

Each rank writes ``OUT/<stage>_rank<r>.pt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

STAGE1 = ["model.decoder.params.width=32", "model.decoder.params.depth=1",
          "model.decoder.params.heads=2", "data.segment_seconds=0.5", "data.batch_size=2",
          "data.train.params={num_items: 16}", "data.val=null", "model.losses=[{name: core.mel}, "
          "{name: core.l1, weight: 0.1}]"]
STAGE2 = ["model.denoiser.params.width=32", "model.denoiser.params.depth=1",
          "model.denoiser.params.heads=2", "model.denoiser.params.head_width=64",
          "model.conditioner.params.dim=16", "model.params.steps=4", "data.segment_seconds=0.5",
          "data.batch_size=2", "train.ema_decay=0.9"]
COMMON = ["deepspeed.zero_stage=2", "data.num_workers=0", "train.log_every=1",
          "train.trackers=[jsonl]", "train.checkpoint_every=2", "train.val_every=0"]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def optimized(trainer) -> list[torch.nn.Parameter]:
    """The parameters the engines' optimizers update (ZeRO-2 keeps them in ``bit16_groups``;
    its ``param_groups`` hold flat per-rank partitions)."""
    found = []
    for engine in trainer.engines.values():
        groups = getattr(engine.optimizer, "bit16_groups", None) or [
            g["params"] for g in engine.optimizer.param_groups]
        found += [p for group in groups for p in group]
    return found


def run(out: Path, stage: str, registry) -> None:
    from audio_core.config import load_config
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.models.build import build_model
    from audio_core.models.loading import load

    rank = dist.get_rank()
    if stage == "stage1":
        preset, overrides = "rae.wav2vec2_tiny", STAGE1
    else:
        preset = "rae.dit_tiny"
        overrides = [*STAGE2, f"model.params.stage1={out / 'stage1_export'}",
                     f"data.train.params.root={out / 'latents'}"]
    run_dir, result = out / stage, {}
    for phase, steps in (("first", 4), ("resumed", 6)):
        cfg = load_config(preset, [*overrides, *COMMON, f"run.output_dir={out}",
                                   f"train.max_steps={steps}"], registry=registry,
                          check_params=True)
        trainer = Trainer(cfg, run_dir=run_dir, resume=phase == "resumed", registry=registry)
        trainer.fit()
        module = trainer.engines[trainer.task.roles[0]].module
        result[phase] = {"step": trainer.step, "params": {
            k: v.detach().clone() for k, v in module.named_parameters()}}
    model = trainer.task.model
    if stage == "stage1":
        with torch.random.fork_rng():
            torch.manual_seed(cfg.run.seed)
            fresh = build_model(cfg, registry)
        encoder = model.encoder_module()
        result.update(
            encoder_unchanged=same(encoder.state_dict(), fresh.encoder_module().state_dict()),
            encoder_frozen=not encoder.training and not any(
                p.requires_grad for p in encoder.parameters()),
            encoder_in_optimizer=bool({id(p) for p in encoder.parameters()}
                                      & {id(p) for p in optimized(trainer)}),
            optimizer_numel=sum(p.numel() for p in optimized(trainer)),
            trainable_numel=sum(p.numel() for p in model.parameters()))
    full = trainer.engines[trainer.task.roles[0]].full_state_dict()
    if rank == 0:
        export = export_run(run_dir, out / f"{stage}_export", registry=registry)
        if stage == "stage1":
            wave = 0.1 * torch.randn(1, 1, 12000, generator=torch.Generator().manual_seed(0))
            loaded = load(export, registry=registry)
            model.eval()
            result["reconstruct_equal"] = torch.equal(loaded.reconstruct(wave),
                                                      model.reconstruct(wave))
            result["loaded_encoder_equal"] = same(loaded.encoder_module().state_dict(),
                                                  model.encoder_module().state_dict())
        result["trained"] = {k: v.detach().clone() for k, v in full.items()}
    torch.save(result, out / f"{stage}_rank{rank}.pt")
    dist.barrier()


def main(out: Path) -> None:
    from audio_core import distributed
    from audio_core.cli import main as cli
    from audio_core.testing import PluginUnderTest

    distributed.init_distributed()
    registry = PluginUnderTest("rae", "audio-plugin-rae", "audio_plugin_rae.hooks").load().registry
    run(out, "stage1", registry)
    code = cli(["latents", str(out / "stage1_export"), str(out / "clips"), str(out / "latents"),
                "--labels"])
    assert code == 0, f"audio-core latents failed on rank {dist.get_rank()}"
    dist.barrier()
    run(out, "stage2", registry)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
