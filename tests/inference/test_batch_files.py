"""``encode_files`` / ``reconstruct_files``: a list of files of different lengths in padded
batches gives each file's own result, trimmed to its length, in the given order."""

from __future__ import annotations

import math

import pytest
import torch

from audio_core.audio.io import save_audio
from audio_core.errors import AudioCoreError
from audio_core.inference.batch import encode_files, reconstruct_files

from .conftest import HOP, RATE

LENGTHS = [1001, 37, 4000, 4, 999]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    torch.manual_seed(1)
    paths = []
    for i, n in enumerate(LENGTHS):
        paths.append(folder / f"f{i}.wav")
        save_audio(paths[-1], 0.5 * torch.rand(1, n) - 0.25, RATE)
    return paths


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_encode_files_equals_one_by_one(codec, files, batch_size):
    from audio_core.audio.io import load_audio

    codes = encode_files(codec, files, n_quantizers=2, batch_size=batch_size)
    assert [c.shape for c in codes] == [(2, math.ceil(n / HOP)) for n in LENGTHS]
    for path, got in zip(files, codes, strict=True):
        audio, _ = load_audio(path, sample_rate=RATE, channels=1)
        assert torch.equal(got, codec.encode_codes(audio[None], n_quantizers=2)[0])


def test_reconstruct_files_equals_one_by_one(codec, files):
    from audio_core.audio.io import load_audio

    outs = reconstruct_files(codec, files, batch_size=3)
    assert [o.shape for o in outs] == [(1, n) for n in LENGTHS]
    for path, got in zip(files, outs, strict=True):
        audio, _ = load_audio(path, sample_rate=RATE, channels=1)
        torch.testing.assert_close(got, codec.reconstruct(audio[None])[0], atol=1e-6,
                                   rtol=1e-5)


def test_latents_of_an_autoencoder(autoencoder, files):
    latents = encode_files(autoencoder, files, batch_size=4)
    assert [tuple(x.shape) for x in latents] == [(8, math.ceil(n / HOP)) for n in LENGTHS]
    with pytest.raises(AudioCoreError, match="n_quantizers does not apply"):
        encode_files(autoencoder, files, n_quantizers=1)
    with pytest.raises(AudioCoreError, match="batch_size must be >= 1, got 0"):
        encode_files(autoencoder, files, batch_size=0)
