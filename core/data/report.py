"""The bad-file report of a run: ``RUN_DIR/bad_files.json``.

Written by rank 0 when the run starts (files found bad while indexing) and again at every
checkpoint (plus files that failed to load since, in the main process)::

    {"train": [{"path": "...", "reason": "..."}, ...], "val": [...]}

Files that fail inside DataLoader worker processes are reported by those workers' log
warnings, and, for datasets that can append to a file from any worker
(:class:`ReportsToFile`, e.g. ``core.shards``), in ``RUN_DIR/data_errors.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

REPORT_FILE = "bad_files.json"
ERRORS_FILE = "data_errors.jsonl"


@runtime_checkable
class ReportsToFile(Protocol):
    """A dataset that appends each unreadable sample to a JSONL file, from any worker."""

    def set_report_file(self, path: str | os.PathLike | None) -> None: ...


def bad_files_of(dataset: Any) -> list[dict[str, str]]:
    """``[{path, reason}]`` of a dataset's ``bad_files`` report (``[]`` without one)."""
    report = getattr(dataset, "bad_files", None)
    if report is None:
        return []
    if hasattr(report, "to_dict"):
        return list(report.to_dict())
    return [{"path": str(b.path), "reason": str(b.reason)} for b in report]


def write_bad_file_report(run_dir: str | os.PathLike,
                          datasets: Mapping[str, Any | None]) -> Path:
    """Write ``RUN_DIR/bad_files.json`` for ``{split: dataset}`` (``None`` datasets are left
    out) atomically; returns its path."""
    data = {split: bad_files_of(ds) for split, ds in datasets.items() if ds is not None}
    path = Path(run_dir) / REPORT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def report_run_datasets(trainer: Any) -> Path | None:
    """:func:`write_bad_file_report` for a trainer's train/val loaders, on rank 0 only."""
    from audio_core import distributed

    if not distributed.is_main_process():
        return None
    val = getattr(trainer, "val_loader", None)
    return write_bad_file_report(trainer.run_dir, {
        "train": trainer.loader.dataset, "val": val.dataset if val is not None else None})
