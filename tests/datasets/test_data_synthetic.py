"""SyntheticDataset: contract, determinism, variety, sanity of the generated audio."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from audio_core.data.base import DatasetError
from audio_core.data.synthetic import KINDS, SyntheticDataset


@pytest.mark.parametrize(("sr", "ch"), [(16000, 1), (24000, 2)])
def test_contract_and_sanity(sr, ch):
    ds = SyntheticDataset(sample_rate=sr, channels=ch, segment_seconds=0.5, seed=0, num_items=10)
    assert len(ds) == 10 and ds.classes == KINDS and not ds.bad_files
    for i in range(len(ds)):
        item = ds[i]
        audio = item["audio"]
        assert audio.shape == (ch, sr // 2) and audio.dtype == torch.float32
        assert audio.isfinite().all() and 0.2 < audio.abs().max() <= 1.0
        assert audio.std() > 1e-3  # not silent
        assert item["mask"].all() and item["mask"].shape == (sr // 2,)
        assert item["label"] == i % len(KINDS) and item["path"] == ""
        assert (item["offset"], item["length"]) == (0, sr // 2)
    if ch == 2:  # events are panned: channels differ
        assert not torch.equal(audio[0], audio[1])
    batch = next(iter(DataLoader(ds, batch_size=5)))
    assert batch["audio"].shape == (5, ch, sr // 2)


def test_deterministic_by_seed_and_index():
    a = SyntheticDataset(sample_rate=8000, segment_seconds=0.25, seed=1)
    b = SyntheticDataset(sample_rate=8000, segment_seconds=0.25, seed=1)
    c = SyntheticDataset(sample_rate=8000, segment_seconds=0.25, seed=2)
    b.set_epoch(3)
    b.set_rank(1)  # content depends on (seed, index) only
    assert all(torch.equal(a[i]["audio"], b[i]["audio"]) for i in range(5))
    assert not torch.equal(a[0]["audio"], c[0]["audio"])
    assert not torch.equal(a[0]["audio"], a[5]["audio"])  # same kind, different item


def test_every_kind_is_distinct_and_varied():
    ds = SyntheticDataset(sample_rate=16000, segment_seconds=0.5, seed=0, num_items=50,
                          max_events=1)
    spectra = {}
    for i in range(len(ds)):
        x = ds[i]["audio"][0]
        spec = torch.fft.rfft(x).abs()
        spectra.setdefault(ds.classes[ds[i]["label"]], []).append(spec / spec.sum())
    # noise is spectrally flat-ish compared with harmonic tones (spectral flatness)
    def flatness(s):
        return (torch.exp(torch.log(s + 1e-12).mean()) / s.mean()).item()
    noise = sum(map(flatness, spectra["noise"])) / 10
    tone = sum(map(flatness, spectra["tone"])) / 10
    assert noise > 5 * tone
    assert len({round(float(s.argmax())) for s in spectra["tone"]}) > 5  # different pitches


def test_kinds_subset_and_errors():
    ds = SyntheticDataset(sample_rate=8000, segment_seconds=0.1, kinds=("hit", "vowel"))
    assert ds.classes == ("hit", "vowel") and ds[3]["label"] == 1
    with pytest.raises(DatasetError, match="unknown synthetic kinds \\['drum'\\]"):
        SyntheticDataset(sample_rate=8000, kinds=("tone", "drum"))
    with pytest.raises(IndexError):
        ds[len(ds)]
