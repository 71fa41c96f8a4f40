"""``audio-core export --format onnx`` of RAE stage-1 models: the frozen wav2vec 2.0 / HuBERT
encoder (tiny random-init configs) windows and trims with tensor arithmetic, so its graph is
length-dynamic; encoder and decoder graphs run in onnxruntime at lengths other than the
traced one and match PyTorch; the CLI end to end on an export."""

from __future__ import annotations

import json

import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from audio_core.config import load_config  # noqa: E402
from audio_core.engine.export import save_export  # noqa: E402
from audio_core.engine.onnx_export import export_onnx  # noqa: E402
from audio_core.models.build import build_model  # noqa: E402


def tiny(registry, preset):
    cfg = load_config(preset, [], registry=registry)
    torch.manual_seed(0)
    return build_model(cfg, registry).eval(), cfg


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.mark.parametrize("preset", ["rae.wav2vec2_tiny", "rae.hubert_tiny"])
def test_speech_encoder_graphs_are_length_dynamic(tmp_path, registry, preset):
    model, _ = tiny(registry, preset)
    info = export_onnx(model, tmp_path, seconds=1.0)
    print(preset, info["max_abs_diff"])
    assert info["max_abs_diff"]["encoder"] <= 1e-4 and info["max_abs_diff"]["decoder"] <= 1e-4
    # shorter than a window, and two windows (max_duration 1 s) with a partial last one
    for samples in (2345, 16000 + 4321):
        x = 0.1 * torch.randn(2, 1, samples, generator=torch.Generator().manual_seed(samples))
        latent = _run(tmp_path / "encoder.onnx", x)
        with torch.no_grad():
            want = model.encode(x)
            assert latent.shape == want.shape == (2, 64, -(-samples // 320))
            assert (latent - want).abs().max() <= 1e-4
            audio = _run(tmp_path / "decoder.onnx", want)
            ref = model.decode(want)
        diff = (audio - ref).abs().max().item()
        print(f"{preset} {samples} samples: decoder max abs diff {diff:.2e}")
        assert audio.shape == ref.shape and diff <= 1e-4


def test_cli_exports_onnx(tmp_path, registry, capsys):
    from audio_core.cli import main

    model, cfg = tiny(registry, "rae.wav2vec2_tiny")
    save_export(model, cfg, tmp_path / "export", registry=registry)
    assert main(["export", str(tmp_path / "export"), str(tmp_path / "onnx"),
                 "--format", "onnx"]) == 0
    info = json.loads((tmp_path / "onnx" / "onnx.json").read_text())
    assert info["latent_dim"] == 64 and info["max_abs_diff"]["decoder"] <= 1e-4
    assert "onnxruntime vs PyTorch: max abs diff" in capsys.readouterr().out


def test_spectrogram_encoder_and_vocoded_decoder(tmp_path, registry):
    """rae.spectrogram_tiny: DINOv2 on a mel image (the real-valued mel front end, the
    position table as it is), and a decoder graph of the ViT's log-mel + Griffin-Lim from the
    ``phase`` input. Griffin-Lim amplifies float error where its phase update divides by a
    near-zero spectrum: PyTorch's own float32 and float64 runs differ by about 1e-3 on this
    model, so the waveform bound is looser than the encoder's."""
    from audio_plugin_rae.onnx import phase_shape

    model, _ = tiny(registry, "rae.spectrogram_tiny")
    info = export_onnx(model, tmp_path, seconds=1.024)
    print("rae.spectrogram_tiny", info["max_abs_diff"])
    assert info["decoder"]["inputs"] == ["latent", "phase"]
    assert info["max_abs_diff"]["encoder"] <= 1e-4
    x = 0.1 * torch.randn(2, 1, 16384 + 3000, generator=torch.Generator().manual_seed(4))
    latent = _run(tmp_path / "encoder.onnx", x)
    with torch.no_grad():
        want = model.encode(x)
        assert latent.shape == want.shape == (2, 64, -(-x.shape[-1] // 256))
        assert (latent - want).abs().max() <= 1e-4
        seed = torch.Generator().manual_seed(0)  # the vocoder's seed: what decode draws
        phase = torch.rand(phase_shape(model, want), generator=seed)
        session = ort.InferenceSession(str(tmp_path / "decoder.onnx"),
                                       providers=["CPUExecutionProvider"])
        audio = torch.from_numpy(session.run(None, {"latent": want.numpy(),
                                                    "phase": phase.numpy()})[0])
        ref = model.decode(want)
    diff = (audio - ref).abs().max().item()
    print(f"rae.spectrogram_tiny decoder (Griffin-Lim): max abs diff {diff:.2e}, peak "
          f"{ref.abs().max():.2f}")
    assert audio.shape == ref.shape and diff <= 1e-2 * ref.abs().max()
