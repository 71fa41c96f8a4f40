"""Reference runs: each codec preset trained on a stated budget, scored beside Opus.

    python scripts/reference_runs.py CORPUS [--out runs/reference] [--presets NAME ...]
        [--threads 2] [--scale 1.0]

``CORPUS`` is a folder with ``train/`` and ``val/`` sub-folders of audio (what
``../shared/tools/make-dev-corpus CORPUS`` builds: speech, music and effects at mixed sample
rates and channel counts; files under a ``speech`` folder also get PESQ/STOI). For every
preset in :data:`RECIPES` whose plugin is installed (or those named by ``--presets``) it

1. trains the preset with the recipe's overrides (data pointed at the corpus, the step and
   batch budget), in a subprocess whose CPU time (user + system) is measured;
2. exports the run, then ``audio-core eval EXPORT CORPUS/val --baseline auto`` (Opus at the
   same bitrate when ``opus-tools`` is installed);
3. plots the loss curves (``scripts/plot_run.py``).

Writes ``OUT/<preset>/`` (run, export, eval, ``loss.png``) and ``OUT/summary.md`` /
``OUT/summary.json``: one table row per system, with the steps, CPU-seconds and wall time
that bought it. ``--scale`` multiplies every recipe's step count (0.05 for a smoke run).
A preset whose run fails is reported with the log's last lines; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plot_run import plot_run

#: preset -> (overrides, why). Every recipe trains on CORPUS/train and validates on a few
#: batches of CORPUS/val; ``{corpus}`` is filled in.
DATA = ["data.train.name=core.folder", "data.train.params.root={corpus}/train",
        "data.val.name=core.folder", "data.val.params.root={corpus}/val",
        "data.val.params.random_crop=false", "train.val_batches=2", "data.num_workers=0"]
RECIPES: dict[str, tuple[list[str], str]] = {
    "soundstream.demo_6kbps": ([], "the README main job's recipe as it is"),
    "soundstream.tiny": (["train.max_steps=600"], "the preset's own GAN recipe"),
    "soundstream.16khz_speech": (
        ["train.max_steps=150", "data.batch_size=4", "data.segment_seconds=0.5",
         "train.val_every=75", "train.checkpoint_every=75"],
        "15 M parameters: 150 steps of 4 x 0.5 s (adversarial warm-up not reached)"),
    "soundstream.24khz": (
        ["train.max_steps=150", "data.batch_size=4", "data.segment_seconds=0.5",
         "train.val_every=75", "train.checkpoint_every=75"],
        "15 M parameters: 150 steps of 4 x 0.5 s (adversarial warm-up not reached)"),
    "bsq.tiny": (["train.max_steps=600", "train.val_every=300", "train.checkpoint_every=300"],
                 "the preset's recipe, twice its steps"),
    "bsq.small": (
        ["train.max_steps=150", "data.batch_size=2", "data.segment_seconds=2.55",
         "train.val_every=75", "train.checkpoint_every=75"],
        "27 M parameters: 150 steps of 2 x 2.55 s"),
}


def installed_presets() -> set[str]:
    from audio_core.plugins import get_plugin_manager

    return {spec.name for spec in get_plugin_manager().registry.specs("preset")}


def run_logged(cmd: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``cmd`` with output to ``log``: (return code, CPU seconds, wall seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, cpu, time.perf_counter() - start


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def reference_run(preset: str, corpus: Path, out: Path, scale: float) -> dict:
    overrides, why = RECIPES[preset]
    overrides = [o.format(corpus=corpus) for o in DATA + overrides]
    overrides = [_scaled(o, scale) for o in overrides]
    folder = out / preset
    folder.mkdir(parents=True, exist_ok=True)
    run = folder / "run"
    train = ["audio-core", "train", "--overwrite", preset, f"run.output_dir={folder}",
             "run.name=run", "train.trackers=[jsonl]", *overrides]
    code, cpu, wall = run_logged(train, folder / "train.log")
    result = {"preset": preset, "recipe": why, "overrides": overrides, "cpu_seconds": cpu,
              "wall_seconds": wall, "command": " ".join(train)}
    if code:
        return {**result, "error": f"training failed ({code}):\n{tail(folder / 'train.log')}"}
    export = folder / "export"
    for step, cmd in (("export", ["audio-core", "export", str(run), str(export)]),
                      ("eval", ["audio-core", "eval", str(export), str(corpus / "val"),
                                "--baseline", "auto", "--out", str(folder / "eval")])):
        code, _, _ = run_logged(cmd, folder / f"{step}.log")
        if code:
            return {**result, "error": f"{step} failed ({code}):\n{tail(folder / f'{step}.log')}"}
    plot_run(run, folder / "loss.png")
    systems = json.loads((folder / "eval" / "results.json").read_text())["systems"]
    return {**result, "steps": _steps(run), "systems": systems}


def _scaled(override: str, scale: float) -> str:
    key, _, value = override.partition("=")
    if key in ("train.max_steps", "train.val_every", "train.checkpoint_every") and scale != 1:
        return f"{key}={max(1, round(int(value) * scale))}"
    return override


def _steps(run: Path) -> int:
    rows = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return max((json.loads(r)["step"] for r in rows), default=0)


COLUMNS = [("kbps", "{:.2f}"), ("mel_distance", "{:.3f}"), ("stft_distance", "{:.2f}"),
           ("si_sdr", "{:.1f}"), ("pesq", "{:.2f}"), ("stoi", "{:.3f}")]


def table(results: list[dict]) -> str:
    head = ("| preset | system | steps | CPU s | " + " | ".join(c for c, _ in COLUMNS)
            + " |\n|" + "---|" * (4 + len(COLUMNS)))
    rows = []
    for r in results:
        if "error" in r:
            rows.append(f"| `{r['preset']}` | failed: see train/eval log | | | "
                        + " | " * (len(COLUMNS) - 1) + " |")
            continue
        for name, system in r["systems"].items():
            cells = [fmt.format(system[c]) if system.get(c) is not None else "-"
                     for c, fmt in COLUMNS]
            budget = (f"{r['steps']} | {r['cpu_seconds']:.0f}" if system.get("kind") == "model"
                      else "- | -")
            rows.append(f"| `{r['preset']}` | {name} | {budget} | " + " | ".join(cells) + " |")
    return head + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path, help="folder with train/ and val/ audio")
    parser.add_argument("--out", type=Path, default=Path("runs/reference"))
    parser.add_argument("--presets", nargs="+", help=f"default: those of {sorted(RECIPES)} "
                                                     f"whose plugin is installed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every step count")
    args = parser.parse_args()
    for split in ("train", "val"):
        if not (args.corpus / split).is_dir():
            parser.error(f"{args.corpus / split} is not a folder: CORPUS needs train/ and val/ "
                         f"(../shared/tools/make-dev-corpus CORPUS builds one)")
    unknown = sorted(set(args.presets or ()) - set(RECIPES))
    if unknown:
        parser.error(f"no reference recipe for {unknown}; known: {sorted(RECIPES)}")
    available = installed_presets()
    presets = args.presets or [p for p in RECIPES if p in available]
    missing = [p for p in presets if p not in available]
    if missing:
        parser.error(f"presets {missing} are not installed (pip install the plugin)")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for index, preset in enumerate(presets, 1):
        print(f"[{index}/{len(presets)}] {preset}: {RECIPES[preset][1]}", flush=True)
        results.append(reference_run(preset, args.corpus.resolve(), args.out.resolve(),
                                     args.scale))
        r = results[-1]
        print(r.get("error") or f"  {r['cpu_seconds']:.0f} CPU s, {r['wall_seconds']:.0f} s "
                                 f"wall", flush=True)
        (args.out / "summary.json").write_text(json.dumps(results, indent=1))
        (args.out / "summary.md").write_text(table(results))
    print(table(results))
    sys.exit(1 if any("error" in r for r in results) else 0)


if __name__ == "__main__":
    main()
