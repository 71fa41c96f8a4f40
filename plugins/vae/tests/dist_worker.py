"""2-rank worker for test_distributed.py (not collected: no ``test_`` prefix).

``python -m torch.distributed.run --nproc_per_node 2 dist_worker.py OUT_DIR``: every rank
trains the tiny preset (shrunk) with the adversarial task under ZeRO-2 through the real
Trainer, with a KL warm-up: run A 4 steps (checkpoints at 2 and 4), resumed to 6; run C 6
steps straight. Rank 0 writes ``OUT_DIR/result.pt``: both final states, the running latent
statistics of both ranks, the logged KL weights and the export's round trip.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the plugin, uninstalled

OVERRIDES = ["data.segment_seconds=0.064", "data.batch_size=2", "train.checkpoint_every=2",
             "train.val_every=0", "train.trackers=[jsonl]", "train.log_every=1",
             "train.optimizer.schedule=constant", "train.optimizer.warmup_steps=0",
             "task.params.warmup_steps=2", "data.train.params.num_items=64", "run.seed=3",
             "deepspeed.zero_stage=2", "model.encoder.params.width=8",
             "model.decoder.params.width=8",
             "model.quantizer.params.kl_weight={start: 0.0, end: 1.0e-3, warmup_steps: 8, "
             "delay_steps: 1}"]



def logged(run_dir: Path, key: str) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["metrics"][key] for r in rows if key in r.get("metrics", {})}


def main() -> None:
    from audio_core import distributed
    from audio_core.config import load_config
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.models.loading import load
    from audio_core.testing import PluginUnderTest

    out = Path(sys.argv[1])
    distributed.init_distributed()
    rank = distributed.rank()
    registry = PluginUnderTest("vae", "audio-plugin-vae", "audio_plugin_vae.hooks").load(
        ).registry

    def cfg(steps: int):
        return load_config("vae.tiny", [*OVERRIDES, f"train.max_steps={steps}"],
                           registry=registry)

    def statistics(trainer):
        model = trainer.engines["generator"].module
        return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
                if k.startswith("normalizer.") or k == "stats_updates"}

    first = Trainer(cfg(4), run_dir=out / "a", registry=registry)
    first.fit()
    zero = (first.engines["generator"].zero_stage, first.engines["discriminator"].zero_stage)
    resumed = Trainer(cfg(6), run_dir=out / "a", resume=True, registry=registry)
    resumed.fit()
    resumed_state = resumed.engines["generator"].full_state_dict()
    stats_ranks = distributed.gather_objects(statistics(resumed))
    straight = Trainer(cfg(6), run_dir=out / "c", registry=registry)
    straight.fit()
    straight_state = straight.engines["generator"].full_state_dict()
    disc = distributed.gather_objects(resumed.engines["discriminator"].full_state_dict())
    dist.barrier()
    if rank == 0:
        exported = export_run(out / "a", out / "export")
        model = load(exported, registry=registry)
        x = 0.1 * torch.randn(1, 1, 3000)
        latent = model.encode(x)
        result = {
            "zero": zero, "resumed_step": resumed.step, "resumed": resumed_state,
            "straight": straight_state, "disc": disc, "stats_ranks": stats_ranks,
            "kl_resumed": logged(out / "a", "quantizer/kl_weight"),
            "kl_straight": logged(out / "c", "quantizer/kl_weight"),
            "exported": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "latent_shape": tuple(latent.shape),
            "decoded_shape": tuple(model.decode(latent, 3000).shape),
            "checkpoints": sorted(p.name for p in (out / "a" / "checkpoints").iterdir()),
        }
        torch.save(result, out / "result.pt")
    distributed.teardown()


if __name__ == "__main__":
    main()
