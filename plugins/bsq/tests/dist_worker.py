"""2-rank worker for test_distributed.py (run under torch.distributed.run; not collected).

``python dist_worker.py OUT LIBRISPEECH``: checks SyncBatchNorm1d against one-process
BatchNorm1d, then trains the ``bsq.small`` preset (its wiring, 128 mels, 16x16 patches,
bf16, ZeRO-2, LibriSpeech data) shrunk to width 32 / 1 layer / 0.5 s segments for 4 steps,
resumes to 6 and exports; each rank writes ``OUT/rank<r>.pt`` with what it saw.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist


def capture_validation(trainer) -> dict[str, float]:
    """A dict that receives the metrics each validation of ``trainer`` logs on this rank."""
    captured: dict[str, float] = {}
    validate = trainer.validate

    def recording_validate() -> dict[str, float]:
        captured.update(validate())
        return captured

    trainer.validate = recording_validate
    return captured


def batchnorm_check(rank: int, world: int) -> dict:
    from audio_plugin_bsq.batchnorm import SyncBatchNorm1d

    xs = [torch.randn(3, 4, 7, generator=torch.Generator().manual_seed(r)) * (r + 1) + r
          for r in range(world)]
    ws = [torch.randn(3, 4, 7, generator=torch.Generator().manual_seed(10 + r))
          for r in range(world)]
    torch.manual_seed(0)
    sync = SyncBatchNorm1d(4).train()
    ref = torch.nn.BatchNorm1d(4).train()
    ref.load_state_dict(sync.state_dict())
    x = xs[rank].clone().requires_grad_()
    y = sync(x)
    (y * ws[rank]).sum().backward()
    for p in sync.parameters():
        dist.all_reduce(p.grad)
    full = torch.cat(xs).requires_grad_()
    y_ref = ref(full)
    (y_ref * torch.cat(ws)).sum().backward()
    rows = slice(3 * rank, 3 * rank + 3)
    return {"y": (y.detach(), y_ref.detach()[rows]), "x_grad": (x.grad, full.grad[rows]),
            "w_grad": (sync.weight.grad, ref.weight.grad),
            "b_grad": (sync.bias.grad, ref.bias.grad),
            "running_mean": (sync.running_mean, ref.running_mean),
            "running_var": (sync.running_var, ref.running_var)}


def batchnorm_stats(module: torch.nn.Module) -> dict:
    from audio_plugin_bsq.batchnorm import SyncBatchNorm1d

    return {f"{n}.{k}": v.clone() for n, m in module.named_modules()
            if isinstance(m, SyncBatchNorm1d) for k, v in m.state_dict().items()}


SHRINK = [f"model.{part}.params.{key}={value}" for part in ("encoder", "decoder")
          for key, value in (("width", 32), ("depth", 1), ("heads", 2))]


def main(out: Path, librispeech: Path) -> None:
    from audio_core import distributed
    from audio_core.config import load_config
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.testing import PluginUnderTest

    distributed.init_distributed()
    rank, world = dist.get_rank(), dist.get_world_size()
    result = {"bn_check": batchnorm_check(rank, world)}
    registry = PluginUnderTest("bsq", "audio-plugin-bsq", "audio_plugin_bsq.hooks").load().registry
    overrides = [*SHRINK, f"run.output_dir={out}", "deepspeed.zero_stage=2",
                 "data.batch_size=2", "data.segment_seconds=0.5", "data.num_workers=0",
                 f"data.train.params.root={librispeech}", "data.train.params.subsets=null",
                 f"data.val.params.root={librispeech}", "data.val.params.subsets=null",
                 "train.val_batches=1", "train.log_every=1", "train.trackers=[jsonl]",
                 "train.checkpoint_every=2", "train.val_every=4", "train.ema_decay=0",
                 "model.vocoder.params.n_iter=4"]
    run_dir = out / "bsq_small"
    for phase, steps in (("first", 4), ("resumed", 6)):
        cfg = load_config("bsq.small", [*overrides, f"train.max_steps={steps}"], registry=registry,
                          check_params=True)
        trainer = Trainer(cfg, run_dir=run_dir, resume=phase == "resumed", registry=registry)
        val = capture_validation(trainer)
        trainer.fit()
        module = trainer.engines["generator"].module
        result[phase] = {"step": trainer.step, "bn": batchnorm_stats(module),
                         "params": {k: v.detach().clone() for k, v in module.named_parameters()},
                         "val": val,
                         "indices": trainer.loader.sampler.indices(0)}
    if rank == 0:
        export_run(run_dir, out / "export")
    torch.save(result, out / f"rank{rank}.pt")
    dist.barrier()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
