"""2-rank worker for test_finetune_distributed.py (not collected: no ``test_`` prefix).

``python -m torch.distributed.run --nproc_per_node 2 finetune_dist_worker.py OUT IMPORTED``:
every rank fine-tunes the imported EnCodec (``model.init=IMPORTED``) with fresh
discriminators under ZeRO-2 through the real Trainer: run A 2 steps, resumed to 4; run C 4
steps straight. Rank 0 exports A with its discriminators, reloads it and writes
``OUT/result.pt`` (both runs' generator and discriminator states, the export's tensors).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the plugin, uninstalled

DISC = "{name: core.msd, params: {scales: 1, width: 4, layers: 2, max_width: 8}}"
OVERRIDES = ["data.segment_seconds=0.02", "data.batch_size=2", "data.sample_rate=24000",
             "train.checkpoint_every=2", "train.val_every=0", "train.trackers=[jsonl]",
             "train.log_every=1", "train.optimizer.schedule=constant",
             "train.optimizer.warmup_steps=0", "task.params.warmup_steps=0",
             "data.train.params.num_items=32", "run.seed=5", "deepspeed.zero_stage=2",
             f"model.discriminators=[{DISC}]"]


def main() -> None:
    from safetensors.torch import load_file

    from audio_core import distributed
    from audio_core.config import load_config
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.models.loading import load
    from audio_core.testing import PluginUnderTest

    out, imported = Path(sys.argv[1]), Path(sys.argv[2])
    distributed.init_distributed()
    registry = PluginUnderTest("soundstream", "audio-plugin-soundstream",
                               "audio_plugin_soundstream.hooks").load().registry

    def cfg(steps: int):
        return load_config(str(imported / "config.yaml"),
                           [*OVERRIDES, f"model.init={imported}", f"train.max_steps={steps}"],
                           registry=registry)

    def states(trainer):
        return {role: trainer.engines[role].full_state_dict()
                for role in ("generator", "discriminator")}

    Trainer(cfg(2), run_dir=out / "a", registry=registry).fit()
    resumed = Trainer(cfg(4), run_dir=out / "a", resume=True, registry=registry)
    resumed.fit()
    straight = Trainer(cfg(4), run_dir=out / "c", registry=registry)
    straight.fit()
    result = {"zero": [resumed.engines[r].zero_stage for r in ("generator", "discriminator")],
              "step": resumed.step, "resumed": states(resumed), "straight": states(straight)}
    distributed.barrier()
    if distributed.rank() == 0:
        export = export_run(out / "a", out / "export", with_discriminators=True)
        model = load(export, registry=registry)
        result["exported"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        result["exported_discriminators"] = load_file(str(export / "discriminators.safetensors"))
        x = torch.randn(1, 1, 2400)
        codes = model.encode_codes(x)
        result["decoded_shape"] = tuple(model.decode_codes(codes, 2400).shape)
        torch.save(result, out / "result.pt")
    distributed.teardown()


if __name__ == "__main__":
    main()
