"""The codec-as-a-library API on exports of this plugin's models (``audio_core.load``):
the causal SEANet codec streams chunk by chunk like offline and batch-encodes files of
different lengths (an imported EnCodec's streaming: test_encodec_streaming.py)."""

from __future__ import annotations

import math

import pytest
import torch

from audio_core.audio.io import save_audio
from audio_core.config import load_config
from audio_core.engine.export import save_export
from audio_core.inference.batch import encode_files
from audio_core.models.build import build_model
from audio_core.models.loading import load


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, registry):
    torch.manual_seed(0)
    cfg = load_config("soundstream.tiny", registry=registry)
    out = tmp_path_factory.mktemp("tiny") / "export"
    save_export(build_model(cfg, registry).eval(), cfg, out, registry=registry)
    return load(out, registry=registry)


@pytest.mark.parametrize("sizes", [[3001], [500, 1, 0, 1500, 1000]])
def test_loaded_soundstream_streams_like_offline(tiny, sizes):
    x = 0.1 * torch.randn(2, 1, 3001)
    codes = torch.cat(list(tiny.encode_stream(torch.split(x, sizes, dim=-1))), dim=-1)
    assert torch.equal(codes, tiny.encode_codes(x))
    audio = torch.cat(list(tiny.decode_stream(torch.split(codes, [7, 1, 86], dim=-1))),
                      dim=-1)
    torch.testing.assert_close(audio, tiny.decode_codes(codes), atol=1e-5, rtol=1e-4)


def test_batch_of_files_equals_one_by_one(tiny, tmp_path):
    paths = []
    for i, n in enumerate([1600, 333, 5000]):
        paths.append(tmp_path / f"{i}.wav")
        save_audio(paths[-1], 0.1 * torch.randn(1, n), 16000)
    codes = encode_files(tiny, paths, batch_size=3)
    assert [c.shape[-1] for c in codes] == [math.ceil(n / 32) for n in (1600, 333, 5000)]
    for path, got in zip(paths, codes, strict=True):
        assert torch.equal(got, encode_files(tiny, [path], batch_size=1)[0])

