"""A 2-rank CPU ZeRO-2 run of the small preset (shrunk to width 32, 1 layer, 0.5 s segments;
bf16; a generated LibriSpeech tree) under torch.distributed.run with gloo: trains, resumes,
exports; the conv module's batch norm is synchronised across ranks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import audio_core
from audio_core.testing import run_ranks

WORKER = Path(__file__).with_name("dist_worker.py")
TIMEOUT = 500  # DeepSpeed's comm op is JIT-built before the launch, outside this limit

pytestmark = pytest.mark.integration


def fake_librispeech(root: Path) -> Path:
    """``root/LibriSpeech/train-clean-100/<speaker>/<chapter>/`` with 8 noisy tones."""
    rng = np.random.default_rng(0)
    for spk in ("19", "26"):
        folder = root / "LibriSpeech" / "train-clean-100" / spk / "198"
        folder.mkdir(parents=True)
        lines = []
        for u in range(4):
            t = np.arange(12000) / 16000
            x = 0.3 * np.sin(2 * np.pi * (150 + 60 * u) * t) + 0.02 * rng.standard_normal(12000)
            sf.write(folder / f"{spk}-198-{u:04d}.flac", x.astype(np.float32), 16000)
            lines.append(f"{spk}-198-{u:04d} SOME WORDS")
        (folder / f"{spk}-198.trans.txt").write_text("\n".join(lines))
    return root / "LibriSpeech"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bsq_dist")
    corpus = fake_librispeech(out / "data")
    run_ranks(WORKER, out, corpus, cwd=out, timeout=TIMEOUT,
              env={"AUDIO_CORE_CACHE_DIR": str(out / "cache")})
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]
    return out, ranks


def test_sync_batchnorm_equals_one_process_on_the_global_batch(run):
    for rank in run[1]:
        for name, (got, want) in rank["bn_check"].items():
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=name)


def test_conv_module_batchnorm_statistics_agree_across_ranks(run):
    r0, r1 = run[1]
    assert not set(r0["first"]["indices"]) & set(r1["first"]["indices"])  # each its own files
    for phase in ("first", "resumed"):
        bn0, bn1 = r0[phase]["bn"], r1[phase]["bn"]
        assert bn0 and bn0.keys() == bn1.keys()
        assert any(k.endswith("conv.batch_norm.running_mean") for k in bn0)
        for key in bn0:
            assert torch.equal(bn0[key], bn1[key]), key
        for key, value in r0[phase]["params"].items():  # ZeRO-2 keeps replicas identical
            assert torch.equal(value, r1[phase]["params"][key]), key
    steps = int(r0["resumed"]["bn"][next(k for k in r0["resumed"]["bn"]
                                          if k.endswith("num_batches_tracked"))])
    assert steps == 6  # one batch-norm update per step, across the resume


def test_trains_resumes_and_exports(run, registry):
    out, (r0, r1) = run
    assert (r0["first"]["step"], r0["resumed"]["step"]) == (4, 6)
    lines = [json.loads(x) for x in (out / "bsq_small" / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "loss/total" in x["metrics"]]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert any("val/si_sdr" in x["metrics"] for x in lines)
    assert r0["first"]["val"] == r1["first"]["val"] and "val/mel_mse_db" in r0["first"]["val"]
    model = audio_core.load(out / "export", registry=registry)
    assert model.bits == 9 and model.n_mels == 128 and model.freq_patches == 8
    for key, value in {**r0["resumed"]["bn"], **r0["resumed"]["params"]}.items():
        assert torch.equal(model.state_dict()[key], value.to(model.state_dict()[key].dtype)), key
    wave = 0.1 * torch.randn(1, 1, 8000)
    out = model(model.mel_spectrogram(wave))
    assert torch.equal(model.decode_mel(out.codes, out.reconstruction.shape[-1]),
                       out.reconstruction)
