"""One-command accelerator check: mixed-precision training and inference speed per family.

    python scripts/accelerator_check.py --out runs/accelerator_check          # on a GPU
    python scripts/accelerator_check.py --tiny --out tmp                      # CPU, < 2 min

For each preset family (soundstream, bsq, vae, rae, mousai; a family whose plugin is not
installed is skipped, with the reason) it trains the family's preset on synthetic audio with
ZeRO-2, once in bf16 and once in fp32 from the same seed (``--steps``, default 200), and
reports:

* ``steps_per_s`` and ``audio_seconds_per_s`` (seconds of training audio per wall second),
  timed after ``warmup_steps`` untimed steps, with the device synchronised;
* ``peak_memory_bytes``: ``torch.cuda.max_memory_allocated`` on CUDA, else the process's
  peak resident set size (``ru_maxrss``; process-wide, so it never decreases);
* ``flops_per_step``: FLOPs of one whole training step (every engine's forward and
  backward: G, D, losses) counted by ``torch.utils.flop_counter.FlopCounterMode`` on step 0.
  It counts matmuls, convolutions and attention (2 FLOPs per multiply-add); FFTs, norms and
  elementwise ops are not counted. ``mfu`` = ``flops_per_step * steps_per_s`` / the
  device's peak (:data:`PEAK_TFLOPS`, dense bf16 for bf16 runs, TF32 for fp32 runs, or
  ``--peak-tflops``); ``null`` where the peak is unknown (CPUs);
* ``loss_agreement``: the ``loss/total`` curves cut into ``--window``-step blocks; per block
  ``|mean_bf16 - mean_fp32| / |mean_fp32|``; the largest must be ``<= --tolerance``
  (default 0.10);
* ``inference``: real-time factor (compute seconds per second of audio; < 1 is faster than
  real time) of the fp32-trained model in eval mode on ``--infer-seconds`` of audio, offline
  (``model.reconstruct``) and, where the model streams (soundstream's ``StreamingCodec``),
  streaming in ``--chunk-ms`` chunks.

Writes ``OUT/accelerator_check.json`` and ``OUT/accelerator_check.md`` (the table for
docs/benchmarks.md). Exit status: 1 if a family failed to run, 2 if a bf16 curve is outside
the tolerance, else 0. ``--tiny`` runs the same code path with tiny presets, batch 2 and a
few steps (CI); its loss agreement is reported, not enforced (4 steps from initialisation
say little about curves).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib.util
import json
import math
import platform
import resource
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

#: Dense peak TFLOP/s by device name fragment: (bf16, tf32). H100/H200 SXM figures.
PEAK_TFLOPS = {"H200": (989.4, 494.7), "H100": (989.4, 494.7), "A100": (312.0, 156.0),
               "L40S": (362.1, 183.0), "A10": (125.0, 62.5), "L4": (121.0, 60.0)}

#: family -> (plugin module, full preset, full overrides, tiny preset, tiny overrides)
FAMILIES: dict[str, dict[str, Any]] = {
    "soundstream": {"plugin": "audio_plugin_soundstream", "preset": "soundstream.24khz",
                    "overrides": ["data.batch_size=32", "data.segment_seconds=1.0"],
                    "tiny": "soundstream.tiny",
                    "tiny_overrides": ["data.segment_seconds=0.128"]},
    "bsq": {"plugin": "audio_plugin_bsq", "preset": "bsq.small", "overrides": [],
            "tiny": "bsq.tiny", "tiny_overrides": ["data.segment_seconds=0.25",
                                                   "model.encoder.params.depth=1",
                                                   "model.decoder.params.depth=1"]},
    "vae": {"plugin": "audio_plugin_vae", "preset": "vae.24khz", "overrides": [],
            "tiny": "vae.tiny", "tiny_overrides": ["data.segment_seconds=0.128"]},
    # the base preset needs downloaded wav2vec2 weights; the tiny encoder runs offline
    "rae": {"plugin": "audio_plugin_rae", "preset": "rae.wav2vec2_tiny",
            "overrides": ["data.batch_size=32"], "tiny": "rae.wav2vec2_tiny",
            "tiny_overrides": ["model.decoder.params.depth=1"]},
    "mousai": {"plugin": "audio_plugin_mousai", "preset": "mousai.autoencoder",
               "overrides": [], "tiny": "mousai.tiny_dae",
               "tiny_overrides": ["data.segment_seconds=0.128", "model.params.decode_steps=2"]},
}
COMMON = ["deepspeed.zero_stage=2", "train.trackers=[jsonl]", "train.val_every=0",
          "train.checkpoint_every=0", "train.ema_decay=0.0", "train.grad_accum=1",
          "run.seed=0", "data.val=null"]
TINY = ["data.batch_size=2", "data.num_workers=0"]
FLOP_COUNT = ("torch.utils.flop_counter.FlopCounterMode over step 0 (one whole training step: "
              "forward and backward of every engine); matmul/conv/attention only, 2 FLOPs "
              "per multiply-add")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/accelerator_check", help="output folder")
    p.add_argument("--tiny", action="store_true", help="tiny presets, few steps (CPU, CI)")
    p.add_argument("--families", default=",".join(FAMILIES),
                   help="comma-separated subset of " + ", ".join(FAMILIES))
    p.add_argument("--steps", type=int, default=None, help="training steps (200; tiny 4)")
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="untimed steps first (10; tiny 1)")
    p.add_argument("--window", type=int, default=None, help="loss blocks (20 steps; tiny 2)")
    p.add_argument("--tolerance", type=float, default=0.10,
                   help="largest relative bf16/fp32 block-mean difference allowed")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="device peak (TFLOP/s) for MFU, overriding the built-in table")
    p.add_argument("--infer-seconds", type=float, default=None, help="audio for RTF (10; tiny 0.5)")
    p.add_argument("--chunk-ms", type=float, default=20.0, help="streaming chunk length")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every run, after the family's (repeatable), "
                        "e.g. data.batch_size=16")
    args = p.parse_args(argv)
    tiny = args.tiny
    args.steps = args.steps or (4 if tiny else 200)
    args.warmup_steps = args.warmup_steps if args.warmup_steps is not None else (1 if tiny else 10)
    args.window = args.window or (2 if tiny else 20)
    args.infer_seconds = args.infer_seconds or (0.5 if tiny else 10.0)
    if args.warmup_steps >= args.steps:
        p.error("--warmup-steps must be below --steps")
    unknown = set(args.families.split(",")) - set(FAMILIES)
    if unknown:
        p.error(f"unknown families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    return args


# ------------------------------------------------------------------------------ helpers
def device_info() -> dict[str, Any]:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return {"device": "cuda", "name": props.name, "memory_bytes": props.total_memory}
    return {"device": "cpu", "name": platform.processor() or platform.machine(),
            "memory_bytes": None}


def peak_flops(name: str, precision: str, override: float | None) -> tuple[float | None, str]:
    """Peak FLOP/s of the device for ``precision`` and where the figure comes from."""
    if override is not None:
        return override * 1e12, "--peak-tflops"
    for key, (bf16, tf32) in PEAK_TFLOPS.items():
        if key in name:
            return (bf16 if precision == "bf16" else tf32) * 1e12, f"table: {key}"
    return None, "unknown device: pass --peak-tflops"


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> tuple[int, str]:
    import torch

    if torch.cuda.is_available():
        return int(torch.cuda.max_memory_allocated()), "cuda max_memory_allocated"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "process peak RSS"


def loss_agreement(bf16: list[float], fp32: list[float], window: int,
                   tolerance: float) -> dict[str, Any]:
    """Largest relative difference of ``window``-step block means of two loss curves."""
    n = min(len(bf16), len(fp32)) // window * window
    diffs = []
    for i in range(0, n, window):
        a = statistics.fmean(bf16[i:i + window])
        b = statistics.fmean(fp32[i:i + window])
        diffs.append(abs(a - b) / max(abs(b), 1e-12))
    worst = max(diffs) if diffs else math.nan
    return {"window": window, "blocks": len(diffs), "max_rel_diff": worst,
            "tolerance": tolerance, "within_tolerance": bool(diffs) and worst <= tolerance}


def family_config(family: str, precision: str, args: argparse.Namespace) -> Any:
    from audio_core.config import load_config
    from audio_core.config.schema import ComponentConfig

    spec = FAMILIES[family]
    preset = spec["tiny"] if args.tiny else spec["preset"]
    overrides = [*COMMON, *(TINY if args.tiny else []),
                 *(spec["tiny_overrides"] if args.tiny else spec["overrides"]),
                 f"train.precision={precision}", f"train.max_steps={args.steps}",
                 f"run.name=accelerator_check_{family}_{precision}", *args.override]
    cfg = load_config(preset, overrides)
    # synthetic audio whatever the preset reads (a full preset names a folder of files)
    cfg.data.train = ComponentConfig(name="core.synthetic", params={"num_items": 4096})
    if cfg.task is not None and cfg.task.name == "core.adversarial":
        # the presets' adversarial warm-up outlasts a short check: start D a quarter in
        cfg.task.params["warmup_steps"] = args.steps // 4
    return cfg


# ------------------------------------------------------------------------------ training
def train_run(family: str, precision: str, args: argparse.Namespace, out: Path,
              peak: tuple[float | None, str]) -> tuple[dict[str, Any], Any]:
    """``args.steps`` ZeRO-2 steps of ``family`` in ``precision``; metrics and the trainer."""
    from torch.utils.flop_counter import FlopCounterMode

    from audio_core.engine.trainer import Trainer

    cfg = family_config(family, precision, args)
    reset_peak_memory()
    trainer = Trainer(cfg, run_dir=out / "runs" / f"{family}_{precision}")
    trainer.setup()
    task = trainer.task

    def batches():
        while True:
            yield from trainer.loader

    stream = batches()
    losses, skipped, flops = [], 0, 0
    started = 0.0
    for step in range(args.steps):
        if step == args.warmup_steps:
            synchronize()
            started = time.perf_counter()
        task.set_step(step)
        batch = next(stream)
        counter = FlopCounterMode(display=False) if step == 0 else contextlib.nullcontext()
        with counter:
            logs = task.train_step(batch, step)
        if step == 0:
            flops = int(counter.get_total_flops())
        skipped += int(float(logs.get("skipped", 0.0)) > 0)
        losses.append(float(logs["loss/total"]))  # a device sync per step, as a trainer logs
    synchronize()
    elapsed = time.perf_counter() - started
    timed = args.steps - args.warmup_steps
    steps_per_s = timed / max(elapsed, 1e-9)
    audio_per_step = cfg.data.batch_size * cfg.train.grad_accum * trainer.world \
        * cfg.data.segment_seconds
    memory, memory_kind = peak_memory()
    peak_value, _ = peak
    run = {"precision": precision, "steps": args.steps, "timed_steps": timed,
           "batch_size": cfg.data.batch_size, "segment_seconds": cfg.data.segment_seconds,
           "sample_rate": cfg.data.sample_rate, "task": cfg.task.name if cfg.task else None,
           "engines": sorted(trainer.engines), "steps_per_s": steps_per_s,
           "audio_seconds_per_s": steps_per_s * audio_per_step,
           "peak_memory_bytes": memory, "peak_memory_kind": memory_kind,
           "flops_per_step": flops,
           "mfu": (flops * steps_per_s / peak_value) if peak_value and flops else None,
           "skipped_steps": skipped, "losses": losses,
           "final_loss_finite": all(math.isfinite(v) for v in losses)}
    trainer.progress.close()
    trainer.tracker.close()
    return run, trainer


# ------------------------------------------------------------------------------ inference
def _timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize()
        t0 = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def inference_rtf(model: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Offline and (where supported) streaming real-time factors of an eval-mode model."""
    import torch

    from audio_core.inference.reconstruct import reconstruct_waveform

    seconds = args.infer_seconds
    sample_rate, channels = int(model.sample_rate), int(model.channels)
    device = next(model.parameters()).device
    audio = 0.3 * torch.randn(1, channels, int(seconds * sample_rate), device=device)
    result: dict[str, Any] = {"seconds": seconds, "precision": "fp32", "batch": 1}
    model.eval()
    with torch.no_grad():
        try:
            result["offline_rtf"] = _timed(lambda: reconstruct_waveform(model, audio)) / seconds
        except Exception as exc:  # the model has no waveform-to-waveform path
            result["offline_rtf"], result["offline_error"] = None, f"{type(exc).__name__}: {exc}"
        result.update(streaming_rtf(model, audio, seconds, args.chunk_ms))
    return result


def streaming_rtf(model: Any, audio: Any, seconds: float, chunk_ms: float) -> dict[str, Any]:
    if importlib.util.find_spec("audio_plugin_soundstream") is None:
        return {"streaming_rtf": None, "streaming_error": "soundstream plugin not installed"}
    from audio_plugin_soundstream.streaming import StreamingCodec

    try:
        codec = StreamingCodec.from_autoencoder(model).eval()
        chunk = max(1, int(chunk_ms / 1000 * int(model.sample_rate)))
        chunks = list(audio.split(chunk, dim=-1))
        taken = _timed(lambda: codec.run(chunks))
    except Exception as exc:  # not a causal codec
        return {"streaming_rtf": None, "streaming_error": f"{type(exc).__name__}: {exc}"}
    return {"streaming_rtf": taken / seconds, "chunk_ms": chunk_ms,
            "chunk_latency_ms": 1000 * taken / len(chunks)}


# ------------------------------------------------------------------------------ report
def check_family(family: str, args: argparse.Namespace, out: Path,
                 device: dict[str, Any]) -> dict[str, Any]:
    import torch

    spec = FAMILIES[family]
    if importlib.util.find_spec(spec["plugin"]) is None:
        return {"status": "skipped", "reason": f"plugin {spec['plugin']} is not installed"}
    entry: dict[str, Any] = {"status": "ok", "preset": spec["tiny" if args.tiny else "preset"],
                             "runs": {}}
    for precision in ("bf16", "fp32"):
        peak = peak_flops(device["name"], precision, args.peak_tflops)
        run, trainer = train_run(family, precision, args, out, peak)
        run["peak_flops"], run["peak_flops_source"] = peak
        entry["runs"][precision] = run
        if precision == "fp32":
            entry["inference"] = inference_rtf(trainer.task.model, args)
        del trainer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    entry["loss_agreement"] = loss_agreement(entry["runs"]["bf16"]["losses"],
                                             entry["runs"]["fp32"]["losses"], args.window,
                                             args.tolerance)
    return entry


def _fmt(value: Any, spec: str = ".3g") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, spec)


def markdown(report: dict[str, Any]) -> str:
    """The report's table (one row per family and precision)."""
    lines = [f"Accelerator check, {report['date']}, {report['device']['name']} "
             f"({report['device']['device']}), {'tiny' if report['tiny'] else 'full'} sizes, "
             f"{report['steps']} steps, ZeRO-2.", "",
             "| family | precision | batch x s | steps/s | audio s/s | peak mem (MiB) "
             "| GFLOP/step | MFU | loss agreement | RTF offline | RTF streaming |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for family, entry in report["families"].items():
        if entry["status"] != "ok":
            lines.append(f"| {family} | {entry['status']}: {entry.get('reason', '')} "
                         f"|  |  |  |  |  |  |  |  |  |")
            continue
        agree = entry["loss_agreement"]
        for precision, run in entry["runs"].items():
            inf = entry["inference"] if precision == "fp32" else {}
            agreement = (f"{_fmt(agree['max_rel_diff'])} "
                         f"({'ok' if agree['within_tolerance'] else 'FAIL'} "
                         f"<= {agree['tolerance']})") if precision == "bf16" else ""
            mfu = "n/a" if run["mfu"] is None else f"{100 * run['mfu']:.1f} %"
            lines.append(
                f"| {family} | {precision} | {run['batch_size']} x {run['segment_seconds']:g} "
                f"| {_fmt(run['steps_per_s'])} | {_fmt(run['audio_seconds_per_s'])} "
                f"| {run['peak_memory_bytes'] / 2**20:.0f} | {run['flops_per_step'] / 1e9:.3g} "
                f"| {mfu} | {agreement} | {_fmt(inf.get('offline_rtf'))} "
                f"| {_fmt(inf.get('streaming_rtf'))} |")
    lines += ["", f"FLOPs: {report['flop_count']}. Loss agreement: largest relative difference "
              f"of {report['window']}-step block means of loss/total (bf16 vs fp32). RTF: "
              f"compute seconds per audio second, fp32, batch 1."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import deepspeed
    import torch

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = device_info()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "device": device,
        "torch": torch.__version__, "deepspeed": deepspeed.__version__,
        "python": sys.version.split()[0], "tiny": args.tiny, "steps": args.steps,
        "warmup_steps": args.warmup_steps, "window": args.window, "zero_stage": 2,
        "flop_count": FLOP_COUNT, "families": {}}
    failed = False
    for family in args.families.split(","):
        print(f"[accelerator_check] {family} ...", flush=True)
        try:
            entry = check_family(family, args, out, device)
        except Exception as exc:
            failed = True
            entry = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc()}
        report["families"][family] = entry
        print(f"[accelerator_check] {family}: {entry['status']} "
              f"{entry.get('reason', '')}".rstrip(), flush=True)
    (out / "accelerator_check.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (out / "accelerator_check.md").write_text(table)
    print(table)
    disagree = [name for name, entry in report["families"].items()
                if entry["status"] == "ok" and not entry["loss_agreement"]["within_tolerance"]]
    if disagree:
        print(f"[accelerator_check] bf16 outside the tolerance of fp32: {', '.join(disagree)}"
              f"{' (tiny runs: reported, not enforced)' if args.tiny else ''}", flush=True)
    if failed:
        return 1
    return 2 if disagree and not args.tiny else 0


if __name__ == "__main__":
    raise SystemExit(main())
