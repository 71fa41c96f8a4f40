"""Sizing guidance per preset: parameters, activation memory per second of audio, and the
DeepSpeed ZeRO stage / offload that fits on 24, 40 and 80 GB GPUs.

``python scripts/sizing.py [--presets NAME ...] [--gpus N] [--json | --from-json FILE]``
builds each preset's task and modules (every trainable role: the model, and discriminators
for GAN tasks) and runs one real training step on CPU with synthetic audio of the preset's
segment length (batch of one), through stand-in engines (plain ``backward``, no
optimizer). It reports:

- parameters: trainable per role, plus frozen ones (a stage-1 model, a frozen encoder);
- activations: the bytes autograd saves for backward (counted by
  ``torch.autograd.graph.saved_tensors_hooks``, each storage once, weights and buffers
  not counted, the peak over the step's backward passes), per second of audio, in
  float32 as measured; mixed precision on a GPU roughly halves them;
- the model states each GPU holds under ZeRO with ``--gpus`` data-parallel GPUs (Adam,
  mixed precision: 2 bytes of weights + 2 of gradients + 12 of float32 master weights and
  moments per trainable parameter = 16, partitioned as the ZeRO paper describes), plus the
  activations of the preset's micro-batch (``data.batch_size`` x ``data.segment_seconds``)
  and a reserve of ``--reserve-gb`` for the CUDA context and allocator; the first
  configuration that fits in 90 % of the GPU is advised;
- measured on this CPU: the step's wall time per second of audio and the peak resident
  memory of the process (each preset runs in a fresh subprocess).

Presets whose task needs data other than audio (e.g. latent diffusion on a stage-1 model's
latents) are listed with the reason instead of figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

GIB = 1024**3
GPU_SIZES_GB = (24, 40, 80)
#: (name, model-state bytes per GPU as a function of (trainable params, GPUs)).
ZERO_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("ZeRO-0", lambda p, n: 16 * p),
    ("ZeRO-1", lambda p, n: 4 * p + 12 * p / n),
    ("ZeRO-2", lambda p, n: 2 * p + 14 * p / n),
    ("ZeRO-2 + offload_optimizer=cpu", lambda p, n: 2 * p + 2 * p / n),
    ("ZeRO-3", lambda p, n: 16 * p / n),
    ("ZeRO-3 + offload_optimizer=cpu", lambda p, n: 4 * p / n),
    ("ZeRO-3 + offload_optimizer/param=cpu", lambda p, n: 0.0),
)


class StandInEngine:
    """What a task needs of a DeepSpeed engine for one step: the module, device and dtype,
    ``backward`` (records the activations saved so far, then runs autograd) and ``step``."""

    def __init__(self, module: Any, meter: ActivationMeter) -> None:
        import torch

        self.module, self.meter = module, meter
        self.device, self.dtype = torch.device("cpu"), torch.float32

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def backward(self, loss: Any) -> None:
        self.meter.close_pass()
        loss.backward()

    def step(self) -> None:
        self.module.zero_grad(set_to_none=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.module, name)


class ActivationMeter:
    """Bytes saved for backward, per backward pass (each storage counted once)."""

    def __init__(self, modules: list[Any] = ()) -> None:
        self.storages: dict[int, int] = {}
        self.peak = 0
        #: weights and buffers are saved for backward too, but they are model states
        self.excluded = {t.untyped_storage().data_ptr() for m in modules
                         for t in (*m.parameters(), *m.buffers())}

    def pack(self, tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.excluded:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    def close_pass(self) -> None:
        self.peak = max(self.peak, sum(self.storages.values()))
        self.storages = {}


def measure(name: str, batch_size: int = 1) -> dict[str, Any]:
    """Figures of preset ``name`` (see the module docstring), measured in this process."""
    import torch

    from audio_core.config import load_config
    from audio_core.engine.trainer import build_task
    from audio_core.plugins import get_registry

    registry = get_registry()
    cfg = load_config(name, [])
    task = build_task(cfg, registry)
    modules = task.build_modules()
    roles = list(modules)
    trainable = {role: sum(p.numel() for p in m.parameters() if p.requires_grad)
                 for role, m in modules.items()}
    total = sum(sum(p.numel() for p in m.parameters()) for m in modules.values())
    frozen = sum(p.numel() for m in modules.values() if hasattr(m, "frozen_modules")
                 for _, sub in m.frozen_modules() for p in sub.parameters())
    seconds = float(cfg.data.segment_seconds or 1.0)
    record: dict[str, Any] = {
        "preset": name, "task": type(task).__name__, "roles": roles,
        "trainable_params": trainable, "frozen_params": frozen + total - sum(trainable.values()),
        "sample_rate": cfg.data.sample_rate, "channels": cfg.data.channels,
        "segment_seconds": seconds, "batch_size": cfg.data.batch_size}
    losses = [loss for loss, _ in getattr(task, "losses", ())]
    meter = ActivationMeter([*modules.values(), *losses])
    task.attach({role: StandInEngine(m, meter) for role, m in modules.items()})
    samples = round(seconds * cfg.data.sample_rate)
    batch = {"audio": 0.1 * torch.randn(batch_size, cfg.data.channels, samples,
                                        generator=torch.Generator().manual_seed(0)),
             "mask": torch.ones(batch_size, samples, dtype=torch.bool)}
    step = 10**6  # past any warm-up: GAN tasks train their discriminators too
    times = []
    try:
        for _ in range(2):
            task.set_step(step)
            meter.storages, meter.peak = {}, 0
            start = time.perf_counter()
            with torch.autograd.graph.saved_tensors_hooks(meter.pack, lambda t: t):
                task.train_step(batch, step)
            times.append(time.perf_counter() - start)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        record["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        return record
    meter.close_pass()
    audio_seconds = seconds * batch_size
    record["activation_bytes_per_audio_s"] = meter.peak / audio_seconds
    record["cpu_step_s_per_audio_s"] = min(times) / audio_seconds
    record["cpu_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return record


def advise(record: dict[str, Any], gpus: int, reserve_gb: float) -> dict[str, str]:
    """The first ZeRO option that fits per GPU size, with the micro-batch audio that fits."""
    params = sum(record["trainable_params"].values())
    frozen = 4 * record["frozen_params"]  # frozen parts stay float32 on every GPU
    act_per_s = record["activation_bytes_per_audio_s"] / 2  # mixed precision: ~half
    batch_audio_s = record["batch_size"] * record["segment_seconds"]
    out = {}
    for size in GPU_SIZES_GB:
        usable = 0.9 * size * 1e9 - reserve_gb * GIB - frozen
        out[f"{size}GB"] = "does not fit (more GPUs, or a smaller model)"
        for option, states in ZERO_OPTIONS:
            left = usable - states(params, gpus)
            if left >= act_per_s * batch_audio_s:
                fits = left / act_per_s if act_per_s else float("inf")
                out[f"{size}GB"] = f"{option} (up to {fits:,.0f} s of audio per micro-batch)"
                break
    return out


def _fmt_bytes(value: float) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def table(records: list[dict[str, Any]], gpus: int, reserve_gb: float) -> str:
    head = ["preset", "trainable params", "activations / s of audio (fp32)",
            *[f"{s} GB GPU" for s in GPU_SIZES_GB], "CPU step s / s of audio", "CPU peak RSS"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        params = " + ".join(f"{r['trainable_params'][role] / 1e6:.2f} M ({role})"
                            for role in r.get("roles", []))
        if r.get("frozen_params"):
            params += f"; {r['frozen_params'] / 1e6:.2f} M frozen"
        if "error" in r or "activation_bytes_per_audio_s" not in r:
            cells = [r["preset"], params or "-", f"n/a: {r.get('error', '?')}",
                     *["-"] * len(GPU_SIZES_GB), "-", "-"]
        else:
            advice = advise(r, gpus, reserve_gb)
            cells = [r["preset"], params, _fmt_bytes(r["activation_bytes_per_audio_s"]),
                     *[advice[f"{s}GB"] for s in GPU_SIZES_GB],
                     f"{r['cpu_step_s_per_audio_s']:.2f}", _fmt_bytes(r["cpu_peak_rss_bytes"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def all_presets() -> list[str]:
    from audio_core.plugins import get_registry

    return get_registry().names("preset")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", metavar="NAME",
                        help="presets to size (default: every installed preset)")
    parser.add_argument("--gpus", type=int, default=8,
                        help="data-parallel GPUs ZeRO partitions over (default 8)")
    parser.add_argument("--reserve-gb", type=float, default=2.0,
                        help="per-GPU reserve for CUDA context, allocator, buffers (GiB)")
    parser.add_argument("--json", action="store_true", help="print the records as JSON")
    parser.add_argument("--from-json", metavar="FILE",
                        help="advise from records an earlier --json run saved (no measuring)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # measure one preset, print JSON
    args = parser.parse_args()
    if args.gpus < 1:
        parser.error(f"--gpus must be >= 1, got {args.gpus}")
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as stream:
            print(table(json.load(stream), args.gpus, args.reserve_gb))
        return
    records = []
    for name in args.presets or all_presets():
        proc = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True,
                              text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode < 0:  # e.g. SIGKILL from the kernel's out-of-memory killer
            records.append({"preset": name, "trainable_params": {},
                            "error": f"measuring process killed by signal {-proc.returncode} "
                                     f"(out of memory on this machine?)"})
            continue
        if proc.returncode != 0 or not lines:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            records.append({"preset": name, "error": last[:160], "trainable_params": {}})
            continue
        records.append(json.loads(lines[-1]))
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(table(records, args.gpus, args.reserve_gb))


if __name__ == "__main__":
    main()
