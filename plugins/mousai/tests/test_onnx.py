"""``audio-core export --format onnx`` of the diffusion autoencoder: the encoder graph, and a
decoder graph of ``(latent, noise)`` unrolling the model's ``decode_steps`` DDIM steps, run in
onnxruntime at a length other than the traced one and compared with ``decode`` on the same
noise; the CLI end to end on an export."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_AE

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from audio_core.config import load_config  # noqa: E402
from audio_core.engine.export import save_export  # noqa: E402
from audio_core.engine.onnx_export import export_onnx  # noqa: E402
from audio_core.errors import AudioCoreError  # noqa: E402
from audio_core.models.build import build_model  # noqa: E402

STEPS = ("model.params.decode_steps=3",)


def tiny(registry, *overrides):
    cfg = load_config("mousai.tiny_dae", [*TINY_AE, *overrides], registry=registry)
    torch.manual_seed(0)
    model = build_model(cfg, registry).eval()
    with torch.no_grad():  # zero-initialised output layers would make the decoder trivial
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    return model, cfg


def _run(path, **inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {k: v.numpy() for k, v in inputs.items()})[0])


def test_unrolled_decoder_matches_decode_with_the_same_noise(tmp_path, registry):
    model, _ = tiny(registry, *STEPS)
    info = export_onnx(model, tmp_path, seconds=0.25)
    assert info["decoder"]["inputs"] == ["latent", "noise"] and info["decoder"]["steps"] == 3
    assert json.loads((tmp_path / "onnx.json").read_text())["decoder"]["steps"] == 3
    print("mousai onnx check", info["max_abs_diff"])
    assert info["max_abs_diff"]["encoder"] <= 1e-4 and info["max_abs_diff"]["decoder"] <= 1e-4
    x = 0.1 * torch.randn(2, 2, 3001, generator=torch.Generator().manual_seed(2))
    latent = _run(tmp_path / "encoder.onnx", waveform=x)
    with torch.no_grad():
        want_latent = model.encode(x)
        noise = torch.randn(model.noise_shape(want_latent),
                            generator=torch.Generator().manual_seed(5))
        want = model.decode(want_latent, seed=5)  # draws this noise from seed 5
    assert latent.shape == want_latent.shape == (2, 8, 12)
    assert (latent - want_latent).abs().max() <= 1e-4
    audio = _run(tmp_path / "decoder.onnx", latent=want_latent, noise=noise)
    diff = (audio - want).abs().max().item()
    print(f"mousai decoder, 3 unrolled steps: max abs diff {diff:.2e}")
    assert audio.shape == want.shape == (2, 2, 12 * 256)
    assert want.abs().max() > 0.1 and diff <= 1e-4


def test_a_sampler_drawing_noise_per_step_is_refused(tmp_path, registry):
    model, _ = tiny(registry, *STEPS, "model.sampler={name: core.ddim, params: {eta: 1.0}}")
    with pytest.raises(AudioCoreError, match=r"sampler DDIMSampler\(eta=1.0\) draws noise"):
        export_onnx(model, tmp_path)


def test_cli_exports_onnx(tmp_path, registry, capsys):
    from audio_core.cli import main

    model, cfg = tiny(registry, *STEPS)
    save_export(model, cfg, tmp_path / "export", registry=registry)
    assert main(["export", str(tmp_path / "export"), str(tmp_path / "onnx"),
                 "--format", "onnx"]) == 0
    info = json.loads((tmp_path / "onnx" / "onnx.json").read_text())
    assert info["decoder"]["steps"] == 3 and info["max_abs_diff"]["decoder"] <= 1e-4
    assert "onnxruntime vs PyTorch: max abs diff" in capsys.readouterr().out
