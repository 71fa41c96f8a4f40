"""2-rank worker for test_distributed.py (not collected: no ``test_`` prefix).

``python -m torch.distributed.run --nproc_per_node 2 dist_worker.py OUT_DIR CAPTIONS``: every
rank trains both Moûsai stages under ZeRO-2 through the real Trainer, each stage as run A
(4 steps, checkpoints at 2 and 4) resumed to 6 and run C (6 steps straight):

1. the tiny diffusion autoencoder (``mousai.autoencoder`` task, shrunk) on synthetic audio;
   exported with its EMA weights;
2. rank 0 pre-encodes the captioned clips listed in ``CAPTIONS`` with that export
   (``audio-core latents``' code path);
3. the tiny text-to-latent generator (``core.diffusion`` with ``mousai.unet`` and the
   offline ``mousai.minilm`` text conditioner) on those latents; exported.

Rank 0 writes ``OUT_DIR/result.pt``: both stages' final states, their ZeRO stages, the
exports' weights and a text-to-audio generation from the stage-2 export.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the plugin, uninstalled

COMMON = ["train.checkpoint_every=2", "train.val_every=0", "train.trackers=[jsonl]",
          "train.log_every=1", "train.optimizer.schedule=constant",
          "train.optimizer.warmup_steps=0", "run.seed=3", "deepspeed.zero_stage=2",
          "data.batch_size=2", "data.num_workers=0", "train.ema_decay=0.9"]
STAGE1 = [*COMMON, "data.segment_seconds=0.064", "data.train.params.num_items=64",
          "data.val=null", "model.params.decode_steps=2",
          "model.encoder.params.widths=[16,16,16]",
          "model.denoiser.params.channels=[8,16,16]"]
STAGE2 = [*COMMON, "data.segment_seconds=0.128", "model.params.steps=3",
          "model.params.guidance=2.0", "task.params.cond_dropout=0.5",
          "model.conditioner.params.max_tokens=8", "model.denoiser.params.channels=[16,16]"]


def main() -> None:
    from audio_core import distributed
    from audio_core.config import load_config
    from audio_core.data.captioned import CaptionedDataset
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.latents.encode import pre_encode
    from audio_core.models.loading import load
    from audio_core.testing import PluginUnderTest

    out, captions = Path(sys.argv[1]), sys.argv[2]
    distributed.init_distributed()
    rank = distributed.rank()
    registry = PluginUnderTest("mousai", "audio-plugin-mousai", "audio_plugin_mousai.hooks"
                               ).load().registry

    def run_twice(preset: str, overrides: list[str], name: str) -> dict:
        def cfg(steps: int):
            return load_config(preset, [*overrides, f"train.max_steps={steps}"],
                               registry=registry)

        first = Trainer(cfg(4), run_dir=out / f"{name}_a", registry=registry)
        first.fit()
        zero = first.engines[first.task.roles[0]].zero_stage
        resumed = Trainer(cfg(6), run_dir=out / f"{name}_a", resume=True, registry=registry)
        resumed.fit()
        role = resumed.task.roles[0]
        straight = Trainer(cfg(6), run_dir=out / f"{name}_c", registry=registry)
        straight.fit()
        result = {"zero": zero, "resumed_step": resumed.step,
                  "resumed": resumed.engines[role].full_state_dict(),
                  "straight": straight.engines[role].full_state_dict(),
                  "checkpoints": sorted(p.name for p in (out / f"{name}_a" / "checkpoints"
                                                         ).iterdir())}
        dist.barrier()
        if rank == 0:
            exported = export_run(out / f"{name}_a", out / f"{name}_export")
            model = load(exported, registry=registry)
            result["exported"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result["model"] = model
        dist.barrier()
        return result

    stage1 = run_twice("mousai.tiny_dae", STAGE1, "ae")
    if rank == 0:
        model = stage1.pop("model")
        data = CaptionedDataset(captions, sample_rate=16000, channels=2, segment_seconds=None)
        pre_encode(model, data, out / "latents", source=str(out / "ae_export"))
    dist.barrier()
    stage2 = run_twice("mousai.tiny_generator", [
        *STAGE2, f"model.params.stage1={out / 'ae_export'}",
        f"data.train.params.root={out / 'latents'}"], "gen")
    if rank == 0:
        generator = stage2.pop("model")
        audio = generator.generate(["a piano playing", "a person speaking"], num_samples=2,
                                   steps=3, guidance=2.0, seed=5, seconds=0.1, decode_steps=2)
        again = generator.generate(["a piano playing", "a person speaking"], num_samples=2,
                                   steps=3, guidance=2.0, seed=5, seconds=0.1, decode_steps=2)
        torch.save({"ae": stage1, "gen": stage2, "audio": audio, "again": again},
                   out / "result.pt")
    distributed.teardown()


if __name__ == "__main__":
    main()
