"""What the web page computes, without a browser."""

from __future__ import annotations

import gc

import pytest
import torch

from audio_core.ui.session import Models, describe, loudness_match


def test_loudness_match_equalises_rms_without_clipping():
    quiet, loud = 0.01 * torch.randn(1, 8000), 0.5 * torch.randn(1, 8000)
    a, b = loudness_match(quiet, loud)
    assert float(a.square().mean().sqrt()) == pytest.approx(
        float(b.square().mean().sqrt()), rel=1e-4)
    assert float(a.square().mean().sqrt()) == pytest.approx(10 ** (-23 / 20), rel=1e-3)
    spiky = torch.zeros(1, 8000)
    spiky[0, ::1000] = 1.0  # RMS far below peak: scaled to -23 dBFS it would clip
    c, d = loudness_match(spiky, loud)
    assert float(c.abs().max()) <= 0.99 + 1e-6
    assert float(c.square().mean().sqrt()) == pytest.approx(
        float(d.square().mean().sqrt()), rel=1e-4)


def test_the_working_folder_goes_with_the_models_object():
    models = Models([])
    workdir = models.workdir
    (workdir / "reconstruction.wav").write_bytes(b"RIFF")
    assert workdir.is_dir()
    del models
    gc.collect()
    assert not workdir.exists()


@pytest.mark.slow
def test_reconstruct_at_fewer_codebooks_with_metrics_and_files(ui_export, speech_file):
    models = Models([str(ui_export)])
    info = describe(models.get(str(ui_export)))
    assert info["num_codebooks"] == 4 and info["scalable"] and info["kbps_per_codebook"] == 2
    result = models.reconstruct(str(ui_export), speech_file, codebooks=2)
    assert result.metrics["system"] == "model@4kbps" and result.metrics["real_kbps"] == 4
    assert {"mel_distance", "stft_distance", "si_sdr", "rtf", "stoi", "pesq"} <= set(
        result.metrics)
    assert result.original.shape == result.reconstruction.shape == (1, 32000)
    assert result.download.is_file() and result.spectrogram.read_bytes()[:4] == b"\x89PNG"
    # more codebooks than the model has: all of them
    assert models.reconstruct(str(ui_export), speech_file, 99).metrics["kbps"] == 8
    with pytest.raises(ValueError, match="not a generative model"):
        models.generate(str(ui_export))


@pytest.mark.parametrize("steps, guidance, seconds, flag", [
    (10, float("nan"), 1.0, "guidance"), (10, float("inf"), 1.0, "guidance"),
    (10, -1.0, 1.0, "guidance"), (10**9, 3.0, 1.0, "--steps"),
    (10, 3.0, float("nan"), "--seconds"), (10, 3.0, 1e9, "--seconds")])
def test_generate_checks_its_numbers_like_the_cli(steps, guidance, seconds, flag):
    from audio_core.contracts.models import Generator
    from audio_core.inference.limits import GenerationLimitError

    class Silent(torch.nn.Module):
        sample_rate, channels, condition_keys = 8000, 1, ()

        def generate(self, *args, **kwargs):  # an all-zero clip is no success
            raise AssertionError("generate must not run with out-of-range numbers")

    Generator.register(Silent)
    models = Models([])
    models._loaded["silent"] = Silent()
    with pytest.raises(GenerationLimitError, match=flag):
        models.generate("silent", steps=steps, guidance=guidance, seconds=seconds)
