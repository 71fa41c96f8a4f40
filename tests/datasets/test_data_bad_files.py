"""Bad files (corrupt, empty, NaN, vanishing) are skipped and reported, never fatal."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_core.data.base import DatasetError
from audio_core.data.folders import FolderDataset
from audio_core.data.loader import make_dataloader


@pytest.fixture
def messy(tmp_path, tone) -> Path:
    root = tmp_path / "messy"
    for i in range(3):
        tone(root / f"good{i}.wav", seconds=0.5, freq=300 + 100 * i)
    (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    (root / "empty.wav").write_bytes(b"")
    nan = np.sin(np.arange(8000) / 10).astype(np.float32)
    nan[::500] = np.nan  # every crop contains NaN
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    return root


def _names(paths) -> list[str]:
    return sorted(Path(p).name for p in paths)


def test_bad_files_skipped_and_reported(messy, caplog):
    with caplog.at_level(logging.WARNING, logger="audio_core"):
        ds = FolderDataset(messy, sample_rate=16000, segment_seconds=0.25, verify=True)
    assert len(ds) == 3
    assert _names(ds.bad_files.paths) == ["corrupt.wav", "empty.wav", "nan.wav"]
    reasons = {Path(b.path).name: b.reason for b in ds.bad_files}
    assert "corrupt" in reasons["corrupt.wav"]
    assert "empty" in reasons["empty.wav"]
    assert "NaN" in reasons["nan.wav"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "3 bad audio file(s)" in warnings[0].getMessage()
    loader = make_dataloader(ds, batch_size=2, seed=0, drop_last=False)
    seen = [p for batch in loader for p in batch["path"]]
    assert _names(seen) == ["good0.wav", "good1.wav", "good2.wav"]
    assert ds.bad_files.to_dict()[0].keys() == {"path", "reason"}


def test_nan_found_at_load_time_without_verify(messy, caplog):
    ds = FolderDataset(messy, sample_rate=16000, segment_seconds=0.25, verify=False)
    assert len(ds) == 4 and "nan.wav" not in _names(ds.bad_files.paths)
    with caplog.at_level(logging.WARNING, logger="audio_core"):
        items = [ds[i] for i in range(len(ds))]
    assert all(np.isfinite(it["audio"].numpy()).all() for it in items)
    assert "nan.wav" not in _names(it["path"] for it in items)
    assert "nan.wav" in _names(ds.bad_files.paths)
    assert any("nan.wav" in r.getMessage() for r in caplog.records)
    # deterministic replacement: the bad index yields the next file, every time
    bad = next(i for i, f in enumerate(ds.files) if f.path.endswith("nan.wav"))
    assert ds[bad]["path"] == ds.files[(bad + 1) % len(ds)].path == items[bad]["path"]


def test_loader_with_workers_survives_bad_file(messy):
    ds = FolderDataset(messy, sample_rate=16000, segment_seconds=0.25, verify=False)
    loader = make_dataloader(ds, batch_size=2, seed=0, num_workers=2, drop_last=False)
    batches = list(loader)
    assert sum(len(b["path"]) for b in batches) == 4
    assert all(b["audio"].isfinite().all() for b in batches)


def test_file_turning_bad_after_indexing(tmp_path, tone):
    paths = [tone(tmp_path / "d" / f"{i}.wav", seconds=0.5) for i in range(3)]
    ds = FolderDataset(tmp_path / "d", sample_rate=16000, segment_seconds=0.25)
    paths[1].write_bytes(b"garbage" * 100)
    paths[2].unlink()
    assert ds[1]["path"] == str(paths[0]) and ds[2]["path"] == str(paths[0])
    assert _names(ds.bad_files.paths) == ["1.wav", "2.wav"]
    assert "not found" in ds.bad_files.reason(str(paths[2]))
    paths[0].unlink()
    with pytest.raises(DatasetError, match="every one of the 3 files failed"):
        ds[0]


def test_all_files_bad(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.wav").write_bytes(b"")
    (tmp_path / "d" / "b.flac").write_bytes(b"not flac")
    with pytest.raises(DatasetError, match=r"no usable audio files .* 2 found, 2 bad"):
        FolderDataset(tmp_path / "d", sample_rate=16000)


def test_a_training_loop_runs_on_the_good_files(messy):
    """Built from a config through the registry, the dataset trains a model on the rest."""
    import torch

    from audio_core.config import build_dataset, load_config

    cfg = load_config({"data": {"segment_seconds": 0.25, "batch_size": 2,
                                "train": {"name": "core.folder", "params": {"root": str(messy)}}}})
    ds = build_dataset(cfg)
    assert len(ds) == 3 and len(ds.bad_files) == 3
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 9, padding=4), torch.nn.Tanh(),
                                torch.nn.Conv1d(4, 1, 9, padding=4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loader = make_dataloader(ds, batch_size=cfg.data.batch_size, seed=0, drop_last=False)
    losses = []
    for _ in range(5):
        for batch in loader:
            recon = model(batch["audio"])
            loss = ((recon - batch["audio"]) ** 2 * batch["mask"][:, None]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
