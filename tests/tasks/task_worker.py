"""Worker for tests/tasks, run once per session with ``torch.distributed.run`` (2 ranks).

``python task_worker.py OUT_DIR SCENARIO [SCENARIO ...]``: every rank runs each scenario
(same task calls on every rank); rank 0 writes ``OUT_DIR/<scenario>.pt``. Not collected
by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

SAMPLES = 256  # 32 ms at 8 kHz
CODEC = {"name": "core.conv", "params": {"dim": 8, "width": 4, "ratios": [4, 4]}}


def make_cfg(task: dict, *, micro: int = 2, accum: int = 1, stages=(2, 1), max_steps: int = 4,
             lr: float = 1e-3, eps: float = 1e-8, discriminators: int = 1, **extra):
    from audio_core.config import load_config

    g_stage, d_stage = stages
    deepspeed = {"zero_stage": g_stage, "roles": {"discriminator": {"zero_stage": d_stage}}}
    if 3 in stages:
        deepspeed["zero_optimization"] = {"stage3_param_persistence_threshold": 0}
    data = {"data": {"sample_rate": 8000, "channels": 1, "segment_seconds": SAMPLES / 8000,
                     "batch_size": micro},
            "model": {"encoder": CODEC, "decoder": CODEC, "losses": [{"name": "core.l1"}],
                      "discriminators": [{"name": "core.waveform",
                                          "params": {"width": 4, "layers": 2, "kernel_size": 5}}]
                      * discriminators},
            "task": task,
            "train": {"grad_accum": accum, "max_steps": max_steps,
                      "optimizer": {"lr": lr, "eps": eps},
                      "trackers": ["jsonl"], "val_every": 0, "checkpoint_every": 0},
            "deepspeed": deepspeed}
    for key, value in extra.items():
        section, _, name = key.partition("__")
        data.setdefault(section, {})[name] = value
    return load_config(data)


def build(cfg, seed: int = 0):
    """Task, its engines and the initial (pre-engine) module states, identical on all ranks."""
    from audio_core.engine import Engine
    from audio_core.engine.trainer import build_task
    from audio_core.plugins import get_registry

    task = build_task(cfg, get_registry())
    torch.manual_seed(seed)
    modules = task.build_modules()
    initial = {role: copy.deepcopy(m.state_dict()) for role, m in modules.items()}
    engines = {role: Engine.from_config(role, modules[role], cfg, task.optimizer_config(role))
               for role in task.roles}
    task.attach(engines)
    return task, engines, initial


def global_batch(step: int, micro_index: int, size: int) -> torch.Tensor:
    """The global micro-batch ``(size, 1, SAMPLES)`` for (step, micro_index)."""
    g = torch.Generator().manual_seed(1000 * step + micro_index)
    t = torch.linspace(0, 1, SAMPLES)
    freq = 20 + 40 * torch.rand(size, 1, 1, generator=g)
    return 0.5 * torch.sin(2 * torch.pi * freq * t) + 0.05 * torch.randn(size, 1, SAMPLES,
                                                                          generator=g)


def local(batch: torch.Tensor, rank: int, world: int) -> dict:
    part = batch.chunk(world)[rank]
    return {"audio": part, "mask": torch.ones(part.shape[0], SAMPLES, dtype=torch.bool)}


def states(engines) -> dict:
    return {role: e.full_state_dict() for role, e in engines.items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def gather(obj) -> list:
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


class Recorder:
    """Wraps each engine's backward/step: the *other* roles' full state before this role's
    backward and after its step, compared bitwise (collective, same calls on all ranks)."""

    def __init__(self, engines):
        self.events: list[tuple[str, bool, bool]] = []  # (role, others same, own changed)
        for role, engine in engines.items():
            self._wrap(role, engine, engines)

    def _wrap(self, role, engine, engines):
        backward, step = engine.backward, engine.step
        pending = {}

        def rec_backward(loss):
            pending["before"] = states(engines)
            backward(loss)

        def rec_step():
            applied = step()
            after = states(engines)
            before = pending.pop("before")
            others = all(same(before[r], after[r]) for r in engines if r != role)
            self.events.append((role, others, applied and not same(before[role], after[role])))
            return applied

        engine.backward, engine.step = rec_backward, rec_step


def run_steps(task, engines, steps: int, rank: int, world: int, micro: int, accum: int,
              poison=None, start: int = 0) -> dict:
    """The trainer's loop over steps ``start .. start + steps - 1``: ``accum`` good
    micro-batches per step; ``poison(step, call)`` (``call`` counts micro-batches from 0)
    returns True to put a NaN into rank 1's batch. Records skips and D's state per step."""
    skipped, d_changed, logs, calls = [], [], [], 0
    for step in range(start, start + steps):
        before = engines["discriminator"].full_state_dict() if "discriminator" in engines \
            else None
        good = 0
        while good < accum:
            batch = local(global_batch(step, 100 + calls, micro * world), rank, world)
            if poison is not None and poison(step, calls) and rank == 1:
                batch["audio"][0, 0, 3] = float("nan")
            calls += 1
            out = task.train_step(batch, step)
            if float(out["skipped"]) > 0:
                skipped.append((step, calls - 1))
                continue
            good += 1
            logs.append({k: float(v) for k, v in out.items()})
        if before is not None:
            d_changed.append(not same(before, engines["discriminator"].full_state_dict()))
    return {"skipped": skipped, "d_changed": d_changed, "logs": logs,
            "steps": {r: e.global_steps for r, e in engines.items()},
            "micro_steps": {r: int(e.ds.micro_steps) for r, e in engines.items()}}


# ---------------------------------------------------------------------- GAN scenarios
def gan_reference(cfg, task, initial, steps: int, world: int) -> dict:
    """Plain PyTorch on the global micro-batches: the same D-then-G sequence, gradients
    scaled by 1/accum, AdamW steps at the accumulation boundary."""
    from audio_core.tasks.adversarial import feature_matching_loss, split_halves
    from audio_core.tasks.base import weighted_losses

    mods = task.build_modules()
    g, d = mods["generator"], mods["discriminator"]
    g.load_state_dict(initial["generator"])
    d.load_state_dict(initial["discriminator"])
    o = cfg.train.optimizer
    opts = {name: torch.optim.AdamW(m.parameters(), lr=lr, betas=tuple(o.betas), eps=o.eps,
                                    weight_decay=o.weight_decay)
            for name, m, lr in (("g", g, o.lr), ("d", d, task.optimizer_config(
                "discriminator").lr))}
    micro, accum = cfg.data.batch_size, cfg.train.grad_accum
    calls = 0
    for step in range(steps):
        for a in range(accum):
            x = global_batch(step, 100 + calls, micro * world)
            calls += 1
            last = a == accum - 1
            fake = g(x).reconstruction
            loss, _ = weighted_losses(task.losses, fake, x, None)
            if task.discriminator_active(step):
                real_l, fake_l, _, _ = split_halves(d(torch.cat([x, fake.detach()])))
                (task.objective.discriminator(real_l, fake_l) / accum).backward()
                if last:
                    opts["d"].step()
                    opts["d"].zero_grad()
            if task.adversarial_active(step):
                d.requires_grad_(False)
                _, fake_l, real_f, fake_f = split_halves(d(torch.cat([x, fake])))
                loss = loss + task.adversarial_weight(step) * task.objective.generator(fake_l) + \
                    task.feature_matching_weight(step) * feature_matching_loss(real_f, fake_f)
            (loss / accum).backward()
            d.requires_grad_(True)
            if last:
                opts["g"].step()
                opts["g"].zero_grad()
    return {"generator": g.state_dict(), "discriminator": d.state_dict()}


def scenario_gan(out: Path, rank: int, world: int) -> None:
    """grad_accum 2, G ZeRO-2 + D ZeRO-1 (and G ZeRO-3 + D ZeRO-3): bitwise isolation of
    the two engines' steps, and both final states against the plain-PyTorch reference."""
    result = {}
    for stages, loss in (((2, 1), "hinge"), ((3, 3), "least_squares")):
        # eps 1e-4: Adam turns a gradient that cancels to ~0 (hinge, real vs fake halves)
        # into a full +-lr step whose sign is rounding noise; a larger eps keeps the
        # comparison about the engines, not about that noise.
        cfg = make_cfg({"name": "core.adversarial",
                        "params": {"loss": loss, "feature_matching_weight": 0.5,
                                   "d_lr": 2e-3}}, accum=2, stages=stages, eps=1e-4)
        task, engines, initial = build(cfg)
        rec = Recorder(engines)
        run = run_steps(task, engines, 2, rank, world, cfg.data.batch_size, 2)
        final = states(engines)
        ref = gan_reference(cfg, task, initial, 2, world) if rank == 0 else None
        result[stages] = {"events": rec.events, "run": run, "final": final, "ref": ref,
                          "d_lr": engines["discriminator"].lr, "g_lr": engines["generator"].lr,
                          "zero": (engines["generator"].zero_stage,
                                   engines["discriminator"].zero_stage)}
    if rank == 0:
        torch.save(result, out / "gan.pt")


def scenario_gan_schedule(out: Path, rank: int, world: int) -> None:
    """warmup_steps 2 + d_update_every 2 over 6 steps; random_discriminator with 2 Ds."""
    cfg = make_cfg({"name": "core.adversarial",
                    "params": {"warmup_steps": 2, "d_update_every": 2}}, accum=2)
    task, engines, _ = build(cfg)
    rec = Recorder(engines)
    schedule = run_steps(task, engines, 6, rank, world, cfg.data.batch_size, 2)
    schedule["events"] = rec.events

    cfg = make_cfg({"name": "core.adversarial", "params": {"random_discriminator": True}},
                   discriminators=2, stages=(0, 0))
    task, engines, _ = build(cfg)
    chosen = [task.discriminator_index(s) for s in range(8)]
    random_run = run_steps(task, engines, 3, rank, world, cfg.data.batch_size, 1)
    all_chosen = gather(chosen)
    if rank == 0:
        torch.save({"schedule": schedule, "chosen": all_chosen, "random_run": random_run},
                   out / "gan_schedule.pt")


def scenario_gan_nan(out: Path, rank: int, world: int) -> None:
    """grad_accum 2: a good micro-batch, then one with a NaN on rank 1 only (skipped by
    both ranks), then the good one that completes step 0; then 2 more steps through the
    trainer-like loop with a NaN in the first micro-batch of step 1."""
    cfg = make_cfg({"name": "core.adversarial", "params": {}}, accum=2)
    task, engines, _ = build(cfg)
    before = states(engines)
    first = task.train_step(local(global_batch(0, 0, 4), rank, world), 0)
    after_first = states(engines)
    bad = local(global_batch(0, 1, 4), rank, world)
    if rank == 1:
        bad["audio"][0, 0, 5] = float("nan")
    skipped = task.train_step(bad, 0)
    after_bad = states(engines)
    micro_after_bad = {r: int(e.ds.micro_steps) for r, e in engines.items()}
    task.train_step(local(global_batch(0, 2, 4), rank, world), 0)
    steps_after_0 = {r: e.global_steps for r, e in engines.items()}
    rest = run_steps(task, engines, 2, rank, world, cfg.data.batch_size, 2,
                     poison=lambda step, call: step == 1 and call == 0, start=1)
    final = states(engines)
    flags = gather((float(first["skipped"]), float(skipped["skipped"])))
    if rank == 0:
        torch.save({"flags": flags, "steps_after_0": steps_after_0,
                    "unchanged_by_skip": same(after_first["generator"], after_bad["generator"])
                    and same(after_first["discriminator"], after_bad["discriminator"]),
                    "first_only_accumulated": same(before["generator"], after_first["generator"])
                    and same(before["discriminator"], after_first["discriminator"]),
                    "micro_after_bad": micro_after_bad, "rest": rest,
                    "finite": all(torch.isfinite(v).all() for s in final.values()
                                  for v in s.values())}, out / "gan_nan.pt")


# ------------------------------------------------------------------ frozen encoder
def scenario_frozen(out: Path, rank: int, world: int) -> None:
    """The real Trainer for 3 steps (ZeRO-0), then checkpoint, export and load."""
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.models.loading import load
    from audio_core.storage.checkpoint import MODEL_FILE

    cfg = make_cfg({"name": "core.frozen_encoder", "params": {}}, stages=(0, 0), max_steps=3,
                   lr=1e-2, model__quantizer={"name": "core.identity"})
    run_dir = out / "frozen_run"
    trainer = Trainer(cfg, run_dir=run_dir)
    trainer.fit()
    task, engine = trainer.task, trainer.engines["generator"]
    model = task.model
    fresh = type(task)(cfg=cfg, registry=task.registry).build_modules()["generator"]
    enc_params = {id(p) for p in model.encoder.parameters()}
    opt_params = [p for e in trainer.engines.values() for grp in e.optimizer.param_groups
                  for p in grp["params"]]
    result = {
        "encoder_unchanged": same(model.encoder.state_dict(), fresh.encoder.state_dict()),
        "encoder_frozen": not any(p.requires_grad for p in model.encoder.parameters())
        and not model.encoder.training,
        "encoder_in_optimizer": any(id(p) in enc_params for p in opt_params),
        "optimizer_numel": sum(p.numel() for p in opt_params),
        "decoder_numel": sum(p.numel() for p in engine.module.parameters()),
        "decoder_changed": not same(fresh.state_dict(), engine.full_state_dict()),
        "export_keys": sorted(model.state_dict()),
        "encoder_keys": sorted(model.encoder.state_dict()),
    }
    dist.barrier()
    if rank == 0:
        ckpt = trainer.checkpoints.latest()
        model_states = next(ckpt.rglob("mp_rank_00_model_states.pt"))
        result["ckpt_module_keys"] = sorted(torch.load(model_states, weights_only=True)["module"])
        from safetensors.torch import load_file

        result["ckpt_safetensors_keys"] = sorted(load_file(str(ckpt / MODEL_FILE)))
        result["ckpt_files"] = sorted(str(p.relative_to(ckpt)) for p in ckpt.rglob("*")
                                      if p.is_file())
        exported = export_run(run_dir, out / "frozen_export")
        result["export_file_keys"] = sorted(load_file(str(exported / MODEL_FILE)))
        loaded = load(exported)
        result["loaded_type"] = type(loaded).__name__
        result["loaded_matches"] = same(loaded.state_dict(), engine.full_state_dict())
        torch.save(result, out / "frozen.pt")
    else:
        engine.full_state_dict()  # keep the collective count equal (ZeRO-0: local only)


def write_stage1(folder: Path) -> Path:
    """An (untrained, seeded) continuous conv autoencoder export: a stage-1 model."""
    from audio_core.config import load_config
    from audio_core.engine.export import save_export
    from audio_core.models.build import build_model
    from audio_core.plugins import get_registry

    cfg = load_config({"data": {"sample_rate": 8000, "channels": 1},
                       "model": {"encoder": CODEC, "decoder": CODEC,
                                 "losses": [{"name": "core.l1"}]}})
    torch.manual_seed(0)
    model = build_model(cfg, get_registry())
    folder.mkdir(exist_ok=True)
    save_export(model, cfg, folder)
    return folder


def diffusion_cfg(stage1: Path, *, objective: str = "core.edm", max_steps: int = 3,
                  stages: int = 2, micro: int = 2, lr: float = 1e-3, **train):
    """``core.diffusion`` on the latents of ``stage1`` (encoded on the fly from audio)."""
    from audio_core.config import load_config

    return load_config({
        "data": {"sample_rate": 8000, "channels": 1, "segment_seconds": SAMPLES / 8000,
                 "batch_size": micro},
        "model": {"params": {"stage1": str(stage1), "steps": 4},
                  "denoiser": {"name": "core.conv_denoiser",
                               "params": {"hidden": 32, "blocks": 2}},
                  "objective": {"name": objective}, "sampler": {"name": "core.heun"}},
        "task": {"name": "core.diffusion"},
        "train": {"max_steps": max_steps, "optimizer": {"lr": lr}, "trackers": ["jsonl"],
                  "val_every": 0, "checkpoint_every": 0, **train},
        "deepspeed": {"zero_stage": stages}})


def scenario_trainer(out: Path, rank: int, world: int) -> None:
    """The real Trainer end to end: the GAN task (grad_accum 2, warmup 1) and the diffusion
    task with EMA, each 3 steps, then the checkpoint's files and the export's keys."""
    from audio_core.engine.export import export_run
    from audio_core.engine.trainer import Trainer
    from audio_core.models.loading import load

    result = {}
    gan = make_cfg({"name": "core.adversarial", "params": {"warmup_steps": 1}}, accum=2,
                   max_steps=3)
    diffusion = diffusion_cfg(out / "diffusion_stage1", ema_decay=0.9)
    for name, cfg in (("gan", gan), ("diffusion", diffusion)):
        trainer = Trainer(cfg, run_dir=out / f"trainer_{name}")
        last = trainer.fit()
        result[name] = {"steps": {r: e.global_steps for r, e in trainer.engines.items()},
                        "logged": sorted(last)}
        dist.barrier()
        if rank == 0:
            ckpt = trainer.checkpoints.latest()
            result[name]["files"] = sorted(str(p.relative_to(ckpt)) for p in ckpt.rglob("*")
                                           if p.is_file())
            exported = export_run(out / f"trainer_{name}", out / f"export_{name}")
            result[name]["weights"] = json.loads((exported / "export.json").read_text())[
                "weights"]
            loaded = load(exported)
            result[name]["loaded"] = type(loaded).__name__
            result[name]["export_keys"] = sorted(loaded.state_dict())
    if rank == 0:
        torch.save(result, out / "trainer.pt")


# ------------------------------------------------------------------------ diffusion
def scenario_diffusion(out: Path, rank: int, world: int) -> None:
    """Latent diffusion (EDM) on a stage-1 model's latents, ZeRO-2: a fixed-noise
    evaluation loss before and after 60 steps, the stage-1 model unchanged and outside the
    engine, samples shaped like latents."""
    stage1 = out / "diffusion_stage1"
    if rank == 0:
        write_stage1(stage1)
    dist.barrier()
    cfg = diffusion_cfg(stage1, stages=2, micro=4, lr=3e-3, max_steps=60)
    task, engines, initial = build(cfg)
    engine = engines["denoiser"]
    model = engine.module
    objective = model.objective
    stage1_before = copy.deepcopy(model.stage1.state_dict())
    fixed = [local(global_batch(999, i, 8), rank, world) for i in range(4)]

    def evaluate() -> float:
        total = 0.0
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(123 + rank)
            for b in fixed:
                for _ in range(4):
                    x0, mask = task.target(b)
                    t = objective.sample_time(x0.shape[0], size=x0[0].numel())
                    net_in, net_t, target, w = objective.training_example(
                        x0, torch.randn_like(x0), t)
                    total += float(objective.loss(engine(net_in, net_t).float(), target, w,
                                                  mask))
        value = torch.tensor([total / 16])
        dist.all_reduce(value)
        return float(value) / world

    before = evaluate()
    torch.manual_seed(7 + rank)
    losses = []
    for step in range(60):
        logs = task.train_step(fixed[step % len(fixed)], step)
        losses.append(float(logs["loss/total"]))
    after = evaluate()
    sample = model.sample_latents(num_samples=2, steps=4, frames=16, seed=0)
    if rank == 0:
        torch.save({"before": before, "after": after, "losses": losses,
                    "stage1_unchanged": same(stage1_before, model.stage1.state_dict()),
                    "stage1_in_engine": any(k.startswith("stage1.") for k in
                                            engine.full_state_dict()),
                    "latent_dim": model.latent_dim,
                    "sample_shape": tuple(sample.shape), "sample_finite":
                        bool(torch.isfinite(sample).all()),
                    "roles": task.roles, "global_steps": engine.global_steps,
                    "initial_keys": sorted(initial["denoiser"])}, out / "diffusion.pt")


def main() -> None:
    out, names = Path(sys.argv[1]), sys.argv[2:]
    from audio_core import distributed

    distributed.init_distributed()
    rank, world = distributed.rank(), distributed.world_size()
    for name in names:
        started = time.perf_counter()
        globals()[f"scenario_{name}"](out, rank, world)
        dist.barrier()
        if rank == 0:
            print(f"scenario {name}: {time.perf_counter() - started:.1f} s", flush=True)
    distributed.teardown()


if __name__ == "__main__":
    main()
