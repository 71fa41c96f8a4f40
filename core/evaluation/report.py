"""Write an evaluation: console table, ``results.json``, ``files.csv`` and plots."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import torch

from audio_core.evaluation.runner import LOWER_IS_BETTER, EvalResult

#: Columns of the console table, in order, when present, with their headers.
TABLE_COLUMNS = {"kbps": "kbps", "real_kbps": "real kbps", "mel_distance": "mel",
                 "stft_distance": "stft", "si_sdr": "SI-SDR", "pesq": "PESQ", "stoi": "STOI",
                 "dnsmos_ovrl": "DNSMOS", "fad": "FAD", "codebook_used": "codes used",
                 "codebook_perplexity": "perplexity", "rtf": "RTF"}


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def print_table(result: EvalResult, console=None) -> None:
    """Means per system (rich table); notes underneath."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(width=160)
    columns = [c for c in TABLE_COLUMNS
               if any(not _missing(s.get(c)) for s in result.systems.values())]
    lower = ", ".join(TABLE_COLUMNS[c] for c in columns if c in LOWER_IS_BETTER)
    table = Table(title=f"audio-core eval: means over files (lower is better: {lower})")
    table.add_column("system", no_wrap=True)
    for column in columns:
        table.add_column(TABLE_COLUMNS[column], justify="right")
    for name, summary in result.systems.items():
        table.add_row(name, *(_fmt(summary.get(c)) for c in columns))
    console.print(table)
    if result.fad:
        emb = result.fad["embedding"]
        console.print(f"FAD embedding: {emb['name']} (layer {emb['layer']}, "
                      f"{emb['sample_rate']} Hz)", markup=False)
    for note in result.notes:  # plain text: `pip install 'audio-core[eval]'` is no markup
        console.print(f"note: {note}", markup=False, highlight=False)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(result: EvalResult, path: Path, info: dict[str, Any]) -> Path:
    payload = {**info, "systems": result.systems, "fad": result.fad, "notes": result.notes,
               "files": result.rows}
    path.write_text(json.dumps(_clean(payload), indent=2) + "\n", encoding="utf-8")
    return path


def write_csv(result: EvalResult, path: Path) -> Path:
    keys: list[str] = []
    for row in result.rows:
        keys += [k for k in row if k not in keys]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in result.rows:
            writer.writerow({k: _fmt(row.get(k)) if isinstance(row.get(k), float)
                             else row.get(k) for k in keys})
    return path


def plot_vs_bitrate(result: EvalResult, path: Path) -> Path | None:
    """One panel per metric (mel distance, SI-SDR, STOI, PESQ when present): mean against
    nominal bitrate, one line per kind of system (model, opus)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in ("mel_distance", "stft_distance", "si_sdr", "stoi", "pesq")
               if any(not _missing(s.get(m)) for s in result.systems.values())]
    points = [s for s in result.systems.values() if s.get("kbps")]
    if not metrics or not points:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2),
                             constrained_layout=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for kind in sorted({s["kind"] for s in points}):
            xs = sorted((s["kbps"], s.get(metric)) for s in points if s["kind"] == kind
                        and not _missing(s.get(metric)))
            if xs:
                ax.plot([x for x, _ in xs], [y for _, y in xs], marker="o", label=kind)
        better = "lower" if metric in LOWER_IS_BETTER else "higher"
        ax.set(title=f"{metric} ({better} is better)", xlabel="kbps")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_worst(worst: list[tuple[str, str, float, torch.Tensor, torch.Tensor]],
               sample_rate: int, path: Path) -> Path | None:
    """Original / coded / difference log-mel spectrograms of the worst files
    ``(file, system, mel distance, original, coded)``, one row each."""
    if not worst:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from audio_core.evaluation.spectrograms import difference_panels

    fig, axes = plt.subplots(len(worst), 3, figsize=(13, 2.6 * len(worst)),
                             constrained_layout=True, squeeze=False)
    for row, (file, system, distance, original, coded) in zip(axes, worst, strict=True):
        panels = difference_panels(original, coded, sample_rate)
        for ax, (title, spec, cmap, limits) in zip(row, panels, strict=True):
            ax.imshow(spec, origin="lower", aspect="auto", cmap=cmap, vmin=limits[0],
                      vmax=limits[1])
            ax.set_title(f"{Path(file).name} · {system} · {title}"
                         + (f" (mel {distance:.2f})" if title == "difference" else ""),
                         fontsize=8)
            ax.set_xticks([])
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
