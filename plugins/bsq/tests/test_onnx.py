"""``audio-core export --format onnx`` of the BSQ tokenizer: waveform -> codes (mel front end
on real-valued STFT ops, chunking by integer arithmetic, BSQ bits -> integers) and codes +
Griffin-Lim initial phases -> waveform (bits -> +-1/sqrt(d) points, decoder, mel inversion,
real-valued Griffin-Lim), run in onnxruntime at lengths other than the traced one, one chunk
and several, against ``encode_codes`` / ``decode_codes``; the CLI end to end."""

from __future__ import annotations

import json

import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from audio_plugin_bsq.onnx import phase_shape  # noqa: E402

from audio_core.config import load_config  # noqa: E402
from audio_core.engine.export import save_export  # noqa: E402
from audio_core.engine.onnx_export import export_onnx  # noqa: E402
from audio_core.models.build import build_model  # noqa: E402


def tiny(registry):
    cfg = load_config("bsq.tiny", [], registry=registry)
    torch.manual_seed(0)
    return build_model(cfg, registry).eval(), cfg


def _run(path, **inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {k: v.numpy() for k, v in inputs.items()})[0])


def test_codes_and_audio_match_pytorch_in_one_chunk_and_several(tmp_path, registry):
    model, _ = tiny(registry)
    info = export_onnx(model, tmp_path, seconds=0.5)
    print("bsq onnx check", info["max_abs_diff"])
    assert info["max_abs_diff"]["encoder_codes_differ"] == 0
    assert info["max_abs_diff"]["decoder"] <= 1e-4
    assert info["decoder"]["inputs"] == ["codes", "phase"]
    assert info["num_codebooks"] == 4 and info["hop_length"] == 640
    # 5 steps (one chunk of 13 at most) and 32 steps (3 chunks, padded to 39)
    for samples in (2900, 20000):
        x = 0.1 * torch.randn(2, 1, samples, generator=torch.Generator().manual_seed(samples))
        codes = _run(tmp_path / "encoder.onnx", waveform=x)
        want = model.encode_codes(x)
        assert codes.shape == want.shape == (2, 4, -(-samples // 640))
        assert torch.equal(codes, want)
        seed = torch.Generator().manual_seed(model.vocoder.seed)  # what decode_codes draws
        phase = torch.rand(phase_shape(model, codes), generator=seed)
        audio = _run(tmp_path / "decoder.onnx", codes=codes, phase=phase)
        ref = model.decode_codes(codes)
        diff = (audio - ref).abs().max().item()
        print(f"bsq {samples} samples: decoder max abs diff {diff:.2e} (peak "
              f"{ref.abs().max():.2f})")
        assert audio.shape == ref.shape == (2, 1, codes.shape[-1] * 640)
        assert diff <= 1e-4


def test_cli_exports_onnx(tmp_path, registry, capsys):
    from audio_core.cli import main

    model, cfg = tiny(registry)
    save_export(model, cfg, tmp_path / "export", registry=registry)
    assert main(["export", str(tmp_path / "export"), str(tmp_path / "onnx"),
                 "--format", "onnx"]) == 0
    info = json.loads((tmp_path / "onnx" / "onnx.json").read_text())
    assert info["max_abs_diff"]["encoder_codes_differ"] == 0
    assert info["max_abs_diff"]["decoder"] <= 1e-4
    assert "onnxruntime vs PyTorch: max abs diff" in capsys.readouterr().out
