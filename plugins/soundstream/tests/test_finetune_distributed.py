"""Issue 24's fine-tuning check: an imported EnCodec fine-tunes on 2 ranks (gloo, ZeRO-2)
with discriminators, resumes exactly, and exports with its discriminators."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from conftest import tiny_encodec  # noqa: E402

from audio_core.engine.imports import import_model  # noqa: E402
from audio_core.testing import run_ranks  # noqa: E402

WORKER = Path(__file__).with_name("finetune_dist_worker.py")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """What rank 0 of the 2-rank fine-tune wrote."""
    out = tmp_path_factory.mktemp("finetune_dist")
    imported = import_model(tiny_encodec(out / "hf"), out / "imported")
    run_ranks(WORKER, out, imported, cwd=out, timeout=600)
    return {**torch.load(out / "result.pt", weights_only=True), "imported": imported}


def close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5,
                                   msg=lambda m, k=key: f"{k}: {m}")


def test_runs_zero2_on_both_engines(result):
    assert result["zero"] == [2, 2] and result["step"] == 4


def test_resume_equals_the_straight_run_including_discriminators(result):
    for role in ("generator", "discriminator"):
        close(result["resumed"][role], result["straight"][role])


def test_it_trained_away_from_the_import(result):
    from safetensors.torch import load_file

    start = load_file(str(result["imported"] / "model.safetensors"))
    tuned = result["resumed"]["generator"]
    assert any(not torch.equal(tuned[k], start[k]) for k in start if "encoder" in k)


def test_export_with_discriminators_reloads(result):
    close(result["exported"], result["resumed"]["generator"])
    close(result["exported_discriminators"], result["resumed"]["discriminator"])
    assert result["decoded_shape"] == (1, 1, 2400)
