"""``scripts/accelerator_check.py --tiny``: the GPU check's code path, on CPU."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "accelerator_check.py"
RUN_FIELDS = {"steps_per_s", "audio_seconds_per_s", "peak_memory_bytes", "flops_per_step",
              "mfu", "losses", "skipped_steps", "peak_flops_source"}


def _installed(distribution: str) -> bool:
    """Installed in this environment (what the script's own process sees; other tests may
    have put plugin checkouts on this process's ``sys.path``)."""
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_tiny_check_writes_json_and_table(tmp_path, deepspeed_ops):
    out = tmp_path / "check"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--out", str(out)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    report = json.loads((out / "accelerator_check.json").read_text())
    assert report["tiny"] and report["steps"] == 4 and "FlopCounterMode" in report["flop_count"]
    assert report["device"]["device"] == "cpu"
    families = report["families"]
    assert set(families) == {"soundstream", "bsq", "vae", "rae", "mousai"}
    for name, entry in families.items():
        plugin = f"audio_plugin_{name}"
        if not _installed(f"audio-plugin-{name}"):  # the core env: each plugin env runs it
            assert entry["status"] == "skipped" and plugin in entry["reason"]
            continue
        assert entry["status"] == "ok", entry.get("traceback", entry)
        for precision in ("bf16", "fp32"):
            run = entry["runs"][precision]
            assert set(run) >= RUN_FIELDS
            assert run["steps_per_s"] > 0 and run["audio_seconds_per_s"] > 0
            assert run["flops_per_step"] > 0 and run["peak_memory_bytes"] > 0
            assert run["mfu"] is None  # no known peak for a CPU
            assert len(run["losses"]) == 4 and run["final_loss_finite"]
        agreement = entry["loss_agreement"]
        assert agreement["blocks"] == 2 and agreement["tolerance"] == 0.10
        assert isinstance(agreement["within_tolerance"], bool)
        inference = entry["inference"]
        assert inference["offline_rtf"] is None or inference["offline_rtf"] > 0
        assert "streaming_rtf" in inference
    if _installed("audio-plugin-soundstream"):
        assert families["soundstream"]["inference"]["streaming_rtf"] > 0
    table = (out / "accelerator_check.md").read_text()
    assert "| family | precision |" in table and "soundstream" in table
