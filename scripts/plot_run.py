"""Loss curves of a run folder (its ``metrics.jsonl``) as a PNG, for docs/reference-runs.md.

    python scripts/plot_run.py runs/soundstream_demo docs/images/soundstream_demo_loss.png

Plots every ``loss/*`` training metric (or the ``--keys`` given) against the step (log scale),
and the validation metrics (``val/*``) on a second, linear panel when the run has them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_series(metrics: Path, prefix: str, keys: list[str] | None) -> dict[str, tuple]:
    """``{key: (steps, values)}`` of the metrics starting with ``prefix`` (or ``keys``)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for line in metrics.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        for key, value in row["metrics"].items():
            if (key in keys) if keys else key.startswith(prefix):
                steps, values = series.setdefault(key, ([], []))
                steps.append(row["step"])
                values.append(value)
    return series


def plot_run(run: Path, out: Path, keys: list[str] | None = None) -> Path:
    """Write the loss-curve PNG of ``run`` (a folder with ``metrics.jsonl``) to ``out``."""
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        raise FileNotFoundError(f"{metrics} does not exist: expected a run folder written by "
                                f"`audio-core train`")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = read_series(metrics, "loss/", keys)
    val = read_series(metrics, "val/", None)
    fig, axes = plt.subplots(1, 2 if val else 1, figsize=(11 if val else 6, 3.6),
                             squeeze=False)
    for ax, series, title in zip(axes[0], (train, val), ("training", "validation"),
                                 strict=False):
        for key, (steps, values) in sorted(series.items()):
            ax.plot(steps, values, label=key, marker="." if title == "validation" else None)
        ax.set(xlabel="step", title=f"{run.name}: {title}",
               yscale="log" if title == "training" else "linear")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a run folder (with metrics.jsonl)")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--keys", nargs="+", help="training metrics to plot (default loss/*)")
    args = parser.parse_args()
    try:
        print(f"wrote {plot_run(args.run, args.out, args.keys)}")
    except FileNotFoundError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
