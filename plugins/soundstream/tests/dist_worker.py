"""2-rank worker for test_distributed.py (not collected: no ``test_`` prefix).

``python -m torch.distributed.run --nproc_per_node 2 dist_worker.py OUT_DIR STAGE``: every
rank trains the tiny preset (shrunk, weight-normed convolutions) with the adversarial task
under ZeRO stage ``STAGE`` through the real Trainer: run A 4 steps (checkpoints at 2 and
4), resumed to 6; run C 6 steps straight. Rank 0 writes ``OUT_DIR/result.pt`` with the
codebooks of both ranks, the replacement counts, both final states and the export's round
trip.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the plugin, uninstalled

OVERRIDES = ["data.segment_seconds=0.064", "data.batch_size=2", "train.checkpoint_every=2",
             "train.val_every=0", "train.trackers=[jsonl]", "train.log_every=1",
             "train.optimizer.schedule=constant", "train.optimizer.warmup_steps=0",
             "task.params.warmup_steps=1", "data.train.params.num_items=64", "run.seed=3"]



def main() -> None:
    from audio_core import distributed
    from audio_core.components.rvq import EMACodebook
    from audio_core.config import load_config
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.models.loading import load
    from audio_core.testing import PluginUnderTest

    out, stage = Path(sys.argv[1]), int(sys.argv[2])
    distributed.init_distributed()
    rank = distributed.rank()
    registry = PluginUnderTest("soundstream", "audio-plugin-soundstream",
                               "audio_plugin_soundstream.hooks").load().registry
    replaced: list[int] = []
    original = EMACodebook.replace_dead

    def counting(self, x):
        n = original(self, x)
        replaced.append(n)
        return n

    EMACodebook.replace_dead = counting

    def cfg(steps: int):
        return load_config("soundstream.tiny", [*OVERRIDES, f"train.max_steps={steps}",
                                                f"deepspeed.zero_stage={stage}"],
                           registry=registry)

    def codebooks(trainer):
        q = trainer.engines["generator"].module.quantizer
        return {k: v.detach().cpu().clone() for k, v in q.state_dict().items()}

    first = Trainer(cfg(4), run_dir=out / "a", registry=registry)
    first.fit()
    after_4 = distributed.gather_objects(codebooks(first))
    counts = distributed.gather_objects(list(replaced))
    zero = (first.engines["generator"].zero_stage, first.engines["discriminator"].zero_stage)
    resumed = Trainer(cfg(6), run_dir=out / "a", resume=True, registry=registry)
    resumed.fit()
    resumed_state = resumed.engines["generator"].full_state_dict()
    after_6 = distributed.gather_objects(codebooks(resumed))
    straight = Trainer(cfg(6), run_dir=out / "c", registry=registry)
    straight.fit()
    straight_state = straight.engines["generator"].full_state_dict()
    disc_same = distributed.gather_objects(resumed.engines["discriminator"].full_state_dict())
    dist.barrier()
    if rank == 0:
        exported = export_run(out / "a", out / "export")
        model = load(exported, registry=registry)
        x = torch.randn(1, 1, 3000)
        codes = model.encode_codes(x)
        result = {
            "zero": zero, "after_4": after_4, "after_6": after_6, "replaced": counts,
            "resumed_step": resumed.step, "resumed": resumed_state, "straight": straight_state,
            "disc": disc_same,
            "exported": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "codes_shape": tuple(codes.shape), "codes_max": int(codes.max()),
            "decoded_shape": tuple(model.decode_codes(codes, 3000).shape),
            "checkpoints": sorted(p.name for p in (out / "a" / "checkpoints").iterdir()),
        }
        torch.save(result, out / "result.pt")
    distributed.teardown()


if __name__ == "__main__":
    main()
