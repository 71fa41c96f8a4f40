"""Worker run by tests/engine under ``torch.distributed.run``, ``deepspeed`` or plain python.

``python dist_worker.py OUT_DIR SCENARIO [SCENARIO ...]``: every rank runs the scenarios
(same engine calls on every rank); rank 0 also runs a single-process plain-PyTorch
reference on the same *global* batch and writes ``OUT_DIR/<scenario>.pt`` holding
``{"ds": ..., "ref": ..., ...}`` for the tests to compare. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

STEPS = 3
IN_DIM, HIDDEN, OUT_DIM = 8, 16, 4


def toy_model(seed: int = 0) -> nn.Module:
    """(batch, 8) -> (batch, 4) MLP with deterministic init."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(IN_DIM, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, OUT_DIM))


def global_batches(n: int, size: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` global batches of ``size`` samples: x (size, 8), y (size, 4)."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, IN_DIM, generator=g), torch.randn(size, OUT_DIM, generator=g))
            for _ in range(n)]


def run_config(stage: int, micro: int = 2, accum: int = 1, clip: float = 0.0,
               warmup: int = 0, schedule: str = "constant", max_steps: int = STEPS,
               lr: float = 1e-2, precision: str = "fp32", **deepspeed):
    from audio_core.config.schema import OptimizerConfig, RunConfig

    cfg = RunConfig()
    cfg.data.batch_size = micro
    cfg.train.grad_accum = accum
    cfg.train.grad_clip = clip
    cfg.train.max_steps = max_steps
    cfg.train.precision = precision
    cfg.train.optimizer = OptimizerConfig(lr=lr, weight_decay=0.01, warmup_steps=warmup,
                                          schedule=schedule)
    cfg.deepspeed = {"zero_stage": stage, **deepspeed}
    if stage == 3:  # partition even tiny tensors
        cfg.deepspeed.setdefault("zero_optimization", {})["stage3_param_persistence_threshold"] = 0
    return cfg


def shard(batch: torch.Tensor, micro: int, accum: int, rank: int, world: int) -> list:
    """This rank's micro-batches of a global batch laid out as (accum, world, micro)."""
    parts = batch.reshape(accum, world, micro, *batch.shape[1:])
    return [parts[a, rank] for a in range(accum)]


def train_engine(engine, cfg, steps: int, rank: int, world: int) -> dict:
    micro, accum = cfg.data.batch_size, cfg.train.grad_accum
    lrs, applied = [], []
    for x, y in global_batches(steps, micro * accum * world):
        lrs.append(engine.lr)  # the LR this step uses
        for xm, ym in zip(shard(x, micro, accum, rank, world), shard(y, micro, accum, rank, world),
                          strict=True):
            pred = engine(xm.to(engine.dtype)).float()
            engine.backward(nn.functional.mse_loss(pred, ym))
            applied.append(engine.step())
    return {"state": engine.full_state_dict(), "lrs": lrs, "applied": applied}


def reference(cfg, steps: int, world: int, seed: int = 0) -> dict:
    """Plain PyTorch: AdamW + clip_grad_norm_ + LambdaLR on the whole global batch."""
    from audio_core.engine.ds_config import lr_lambda

    model, opt_cfg = toy_model(seed), cfg.train.optimizer
    opt = torch.optim.AdamW(model.parameters(), lr=opt_cfg.lr, betas=tuple(opt_cfg.betas),
                            eps=opt_cfg.eps, weight_decay=opt_cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(opt_cfg, cfg.train.max_steps))
    norms, lrs = [], []
    size = cfg.data.batch_size * cfg.train.grad_accum * world
    for x, y in global_batches(steps, size):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        if cfg.train.grad_clip > 0:
            norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)))
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "lrs": lrs, "norms": norms}


# ---------------------------------------------------------------------- scenarios
def scenario_zero(out: Path, rank: int, world: int) -> None:
    """ZeRO 0-3, fp32, with clipping (active) and warmup + cosine."""
    from audio_core.engine import Engine

    result = {}
    for stage in (0, 1, 2, 3):
        cfg = run_config(stage, clip=0.05, warmup=2, schedule="cosine", max_steps=STEPS + 1)
        engine = Engine.from_config("model", toy_model(), cfg)
        result[stage] = train_engine(engine, cfg, STEPS, rank, world)
        result[stage]["ds_config"] = engine.ds_config
    if rank == 0:
        ref = reference(run_config(0, clip=0.05, warmup=2, schedule="cosine",
                                   max_steps=STEPS + 1), STEPS, world)
        torch.save({"ds": result, "ref": ref}, out / "zero.pt")


def scenario_accum(out: Path, rank: int, world: int) -> None:
    """micro 1 x accum 2 vs micro 2 x accum 1 under ZeRO 0 and 2 (same global batch)."""
    from audio_core.engine import Engine

    result = {}
    for stage in (0, 2):
        for micro, accum in ((1, 2), (2, 1)):
            cfg = run_config(stage, micro=micro, accum=accum, clip=1.0)
            engine = Engine.from_config("model", toy_model(), cfg)
            result[(stage, micro, accum)] = train_engine(engine, cfg, STEPS, rank, world)
    if rank == 0:
        torch.save({"ds": result, "ref": reference(run_config(0, clip=1.0), STEPS, world)},
                   out / "accum.pt")


def scenario_checkpoint(out: Path, rank: int, world: int) -> None:
    """Train 2 steps, save, train 1 more; a fresh engine loads and trains the same step."""
    from audio_core.engine import Engine

    result = {}
    for stage in (1, 3):
        cfg = run_config(stage, warmup=3, schedule="linear", max_steps=6)
        ckpt = out / f"ckpt{stage}"
        a = Engine.from_config("generator", toy_model(), cfg)
        train_engine(a, cfg, 2, rank, world)
        a.save(ckpt, "step2", {"step": 2})
        cont = train_engine(a, cfg, 1, rank, world)
        b = Engine.from_config("generator", toy_model(seed=5), cfg)
        client = b.load(ckpt, "step2")
        resumed = train_engine(b, cfg, 1, rank, world)
        result[stage] = {"cont": cont, "resumed": resumed, "client": client,
                         "steps": b.global_steps, "files": sorted(
                             str(p.relative_to(ckpt)) for p in ckpt.rglob("*") if p.is_file())}
    if rank == 0:
        torch.save({"ds": result}, out / "checkpoint.pt")


class Critic(nn.Module):
    """(batch, 4) -> (batch, 1)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(OUT_DIM, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def gan_steps(g_call, d_call, g_step, d_step, freeze, data) -> None:
    """One hinge-GAN step per batch: D on (real, fake.detach()), then G with D frozen."""
    for x, real in data:
        fake = g_call(x)
        d_loss = torch.relu(1 - d_call(real)).mean() + torch.relu(1 + d_call(fake.detach())).mean()
        d_step(d_loss)
        freeze(True)
        g_loss = -d_call(fake).mean() + nn.functional.l1_loss(fake, real)
        g_step(g_loss)
        freeze(False)


def scenario_gan(out: Path, rank: int, world: int) -> None:
    """Two engines (ZeRO-3 generator, ZeRO-1 discriminator) vs two plain torch optimizers."""
    from audio_core.engine import Engine

    cfg = run_config(3, roles={"discriminator": {"zero_stage": 1}})
    torch.manual_seed(3)
    g = Engine.from_config("generator", toy_model(), cfg)
    torch.manual_seed(4)
    d = Engine.from_config("discriminator", Critic(), cfg)
    micro = cfg.data.batch_size

    def step(engine):
        def run(loss):
            engine.backward(loss)
            engine.step()
        return run

    data = [(shard(x, micro, 1, rank, world)[0], shard(y, micro, 1, rank, world)[0])
            for x, y in global_batches(STEPS, micro * world)]
    gan_steps(g, d, step(g), step(d), lambda frozen: d.requires_grad_(not frozen), data)
    result = {"g": g.full_state_dict(), "d": d.full_state_dict(),
              "stages": (g.zero_stage, d.zero_stage)}
    if rank == 0:
        gm = toy_model()
        torch.manual_seed(4)
        dm = Critic()
        opts = [torch.optim.AdamW(m.parameters(), lr=1e-2, betas=(0.9, 0.99), weight_decay=0.01)
                for m in (gm, dm)]

        def ref_step(opt):
            def run(loss):
                opt.zero_grad()
                loss.backward()
                opt.step()
            return run

        gan_steps(gm, dm, ref_step(opts[0]), ref_step(opts[1]),
                  lambda frozen: dm.requires_grad_(not frozen),
                  global_batches(STEPS, micro * world))
        ref = {"g": gm.state_dict(), "d": dm.state_dict()}
        torch.save({"ds": result, "ref": ref}, out / "gan.pt")


def scenario_precision(out: Path, rank: int, world: int) -> None:
    """bf16 under ZeRO 0 and 2 (close to the fp32 reference); fp16 where unsupported."""
    from audio_core.engine import Engine
    from audio_core.errors import ConfigError

    result = {}
    for stage in (0, 2):
        cfg = run_config(stage, precision="bf16")
        engine = Engine.from_config("model", toy_model(), cfg)
        result[stage] = train_engine(engine, cfg, STEPS, rank, world)
        result[stage]["dtype"] = str(engine.dtype)
        result[stage]["param_dtype"] = str(next(engine.module.parameters()).dtype)
    try:
        Engine.from_config("model", toy_model(), run_config(0, precision="fp16"))
        result["fp16"] = "supported"
    except ConfigError as exc:
        result["fp16"] = str(exc)
    if rank == 0:
        torch.save({"ds": result, "ref": reference(run_config(0), STEPS, world)},
                   out / "precision.pt")


def scenario_offload(out: Path, rank: int, world: int) -> None:
    """The zero3_offload preset (DeepSpeedCPUAdam, params and optimizer on CPU)."""
    from audio_core.engine import Engine

    cfg = run_config(3, clip=0.05)
    cfg.deepspeed = {"config": "zero3_offload",
                     "zero_optimization": {"stage3_param_persistence_threshold": 0}}
    engine = Engine.from_config("model", toy_model(), cfg)
    result = train_engine(engine, cfg, STEPS, rank, world)
    result["optimizer"] = type(engine.optimizer.optimizer).__name__
    if rank == 0:
        torch.save({"ds": result, "ref": reference(cfg, STEPS, world)}, out / "offload.pt")


def scenario_launcher(out: Path, rank: int, world: int) -> None:
    """Quick ZeRO-2 run that also records how the process was launched."""
    from audio_core.engine import Engine

    cfg = run_config(2, clip=0.05)
    result = train_engine(Engine.from_config("model", toy_model(), cfg), cfg, STEPS, rank, world)
    result["env"] = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
    if rank == 0:
        ref = reference(run_config(2, clip=0.05), STEPS, world)
        torch.save({"ds": result, "ref": ref, "world": world}, out / "launcher.pt")


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items()
             if name.startswith("scenario_")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("scenarios", nargs="+", choices=sorted(SCENARIOS))
    parser.add_argument("--local_rank", type=int, default=None)  # the deepspeed launcher's
    args = parser.parse_args()

    from audio_core import distributed

    distributed.init_distributed()
    rank, world = distributed.rank(), distributed.world_size()
    for name in args.scenarios:
        start = time.perf_counter()
        SCENARIOS[name](args.out, rank, world)
        distributed.barrier()
        if rank == 0:
            print(f"scenario {name}: {time.perf_counter() - start:.1f}s", flush=True)
    distributed.teardown()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
