"""Per-rank bytes of model states under ZeRO-3 vs ZeRO-0 with 2 ranks (CPU, gloo).

    python -m torch.distributed.run --standalone --nproc_per_node 2 \
        benchmarks/engine_memory.py [--out engine_memory.json]

After one training step and the next backward (gradients alive: the peak of model
states), every tensor storage the engine holds is counted once (deduplicated by
storage): parameters (ZeRO-3: this rank's ``ds_tensor`` partitions; parameters below
``stage3_param_persistence_threshold`` stay whole), gradients, optimizer states (AdamW
``exp_avg``/``exp_avg_sq``) and DeepSpeed's other buffers (the fp32 master partition,
flat gradient buffers). Rank 0 prints a table and writes JSON. Model: 6 x Linear(512, 512),
(batch, 512) -> (batch, 512), about 1.58 M parameters.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

WIDTH, DEPTH = 512, 6


def storage_key(t: torch.Tensor) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.nbytes()


def census(engine) -> dict[str, int]:
    """Bytes per category of every distinct storage the engine holds (this rank)."""
    seen: set[tuple[int, int]] = set()
    sizes = {"params": 0, "grads": 0, "optimizer_state": 0, "other": 0}

    def add(category: str, t: object) -> None:
        if isinstance(t, list | tuple):
            for item in t:
                add(category, item)
            return
        if not isinstance(t, torch.Tensor) or t.untyped_storage().nbytes() == 0:
            return
        key = storage_key(t)
        if key[0] != 0 and key not in seen:
            seen.add(key)
            sizes[category] += key[1]

    params = list(engine.module.parameters())
    for p in params:
        add("params", getattr(p, "ds_tensor", None))
        add("params", p.data)
    for p in params:
        add("grads", p.grad)
    opt = engine.ds.optimizer
    basic = getattr(opt, "optimizer", opt)
    for state in basic.state.values():
        add("optimizer_state", list(state.values()))
    wrapper_attrs = vars(opt) if opt is not basic else {}
    for name, value in wrapper_attrs.items():
        if "grad" in name:
            add("grads", value)
    for group in basic.param_groups:
        for p in group["params"]:
            add("grads", p.grad)
            add("other", p)
    for value in wrapper_attrs.values():
        add("other", value)
    sizes["total"] = sum(sizes.values())
    return sizes


def measure(stage: int, precision: str) -> dict[str, int]:
    from audio_core.config.schema import RunConfig
    from audio_core.engine import Engine

    cfg = RunConfig()
    cfg.data.batch_size = 4
    cfg.train.precision = precision
    cfg.deepspeed = {"config": f"zero{stage}"}
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH)))
    engine = Engine.from_config("model", model, cfg)
    x = torch.randn(4, WIDTH, dtype=engine.dtype)
    engine.backward(engine(x).float().pow(2).mean())
    engine.step()  # optimizer states now exist
    engine.backward(engine(x).float().pow(2).mean())
    sizes = census(engine)  # gradients are alive: the peak of model states
    engine.step()
    sizes["num_params"] = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel()
                              for p in engine.module.parameters())
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("engine_memory.json"))
    args = parser.parse_args()

    from audio_core import distributed

    distributed.init_distributed()
    rows = {}
    for precision in ("fp32", "bf16"):
        for stage in (0, 3):
            rows[f"{precision}/zero{stage}"] = measure(stage, precision)
    if distributed.rank() == 0:
        mib = 2**20
        cols = ("params", "grads", "optimizer_state", "other", "total")
        print(f"world size {distributed.world_size()}, per-rank MiB after backward, before step")
        print(f"{'config':<12}" + "".join(f"{c:>17}" for c in cols))
        for name, row in rows.items():
            print(f"{name:<12}" + "".join(f"{row[c] / mib:>17.2f}" for c in cols))
        def states(row: dict[str, int]) -> int:  # what the target counts
            return row["params"] + row["grads"] + row["optimizer_state"]

        ratios = {p: states(rows[f"{p}/zero3"]) / states(rows[f"{p}/zero0"])
                  for p in ("fp32", "bf16")}
        totals = {p: rows[f"{p}/zero3"]["total"] / rows[f"{p}/zero0"]["total"]
                  for p in ("fp32", "bf16")}
        for precision in ratios:
            print(f"{precision}: ZeRO-3 / ZeRO-0 params+grads+optimizer state = "
                  f"{ratios[precision]:.3f} (target <= 0.55); everything held incl. "
                  f"DeepSpeed's fp32 master partition and buffers = {totals[precision]:.3f}")
        result = {"world_size": distributed.world_size(), "bytes": rows,
                  "ratio_zero3_over_zero0": ratios, "ratio_total_held": totals,
                  "target": 0.55}
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    distributed.teardown()


if __name__ == "__main__":
    main()
