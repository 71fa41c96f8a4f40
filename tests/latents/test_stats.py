"""Streaming latent statistics equal numpy's; statistics files round-trip and fail clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio_core.models.latent_stats import RunningMoments, StatsError, load_stats, save_stats
from audio_core.models.normalizer import LatentNormalizer


def test_streaming_moments_equal_numpy_whatever_the_batching():
    g = torch.Generator().manual_seed(0)
    items = [1e3 + 5 * torch.randn(3, 4, int(n), generator=g, dtype=torch.float64)
             for n in (7, 1, 30, 12)]
    flat = np.concatenate([x.numpy().transpose(1, 0, 2).reshape(4, -1) for x in items], 1)
    one, many = RunningMoments(4), RunningMoments(4)
    for x in items:
        one.update(x)
        for b in range(x.shape[0]):
            for t in range(0, x.shape[-1], 5):
                many.update(x[b, :, t:t + 5])
    for moments in (one, many):
        np.testing.assert_allclose(moments.mean.numpy(), flat.mean(1), rtol=1e-12)
        np.testing.assert_allclose(moments.std.numpy(), flat.std(1), rtol=1e-9)
        assert moments.count[0].item() == flat.shape[1]


def test_mask_keeps_only_real_frames_and_merge_is_chan():
    x = torch.arange(12, dtype=torch.float32).reshape(1, 2, 6)
    mask = torch.tensor([[True, True, True, False, False, False]])
    m = RunningMoments(2)
    m.update(x, mask)
    np.testing.assert_allclose(m.mean.numpy(), [1.0, 7.0])
    a, b = RunningMoments(2), RunningMoments(2)
    a.update(x[..., :2])
    b.update(x[..., 2:])
    a.merge(b.count, b.mean, b.m2)
    np.testing.assert_allclose(a.std.numpy(), x[0].double().numpy().std(1), rtol=1e-12)


def test_stats_file_round_trip_and_errors(tmp_path):
    m = RunningMoments(3)
    m.update(torch.randn(2, 3, 50))
    path = save_stats(tmp_path / "s.safetensors", m.result(), fingerprint="abc", items=2)
    stats, meta = load_stats(path, 3)
    torch.testing.assert_close(stats["std"], m.std.float())
    assert meta == {"fingerprint": "abc", "items": 2}
    norm = LatentNormalizer(3).load(path)
    z = torch.randn(2, 3, 9)
    torch.testing.assert_close(norm.denormalize(norm.normalize(z)), z)
    with pytest.raises(StatsError, match="3 latent channels, the model's latent has 4"):
        load_stats(path, 4)
    with pytest.raises(StatsError, match="does not exist"):
        load_stats(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(StatsError, match="not a latent statistics file"):
        load_stats(tmp_path / "junk.safetensors")
    with pytest.raises(StatsError, match="no latent frames"):
        RunningMoments(2).result()
