"""``audio-core export --format onnx``: the SEANet + RVQ codec's encoder and decoder graphs
run in onnxruntime as in PyTorch (codes identical, audio within 1e-4), at lengths other
than the traced one and with fewer codebooks than the graph was traced with."""

from __future__ import annotations

import json

import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from conftest import run_onnx_stream  # noqa: E402

from audio_core.config import load_config  # noqa: E402
from audio_core.engine.onnx_export import export_onnx  # noqa: E402
from audio_core.models.build import build_model  # noqa: E402


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


def test_soundstream_onnx_matches_torch(tmp_path):
    torch.manual_seed(0)
    model = build_model(load_config("soundstream.tiny")).eval()
    info = export_onnx(model, tmp_path, seconds=0.25)
    assert info["max_abs_diff"]["encoder_codes_differ"] == 0
    assert info["max_abs_diff"]["decoder"] <= 1e-4
    assert json.loads((tmp_path / "onnx.json").read_text())["num_codebooks"] == 4
    x = 0.1 * torch.randn(3, 1, 3001, generator=torch.Generator().manual_seed(2))
    codes = _run(tmp_path / "encoder.onnx", x)
    assert torch.equal(codes, model.encode_codes(x))
    for n in (4, 2):  # the decoder graph takes any leading subset of the codebooks
        audio = _run(tmp_path / "decoder.onnx", codes[:, :n])
        ref = model.decode_codes(codes[:, :n])
        diff = (audio - ref).abs().max().item()
        print(f"{n} codebooks: max abs diff {diff:.2e}")
        assert diff <= 1e-4
    # weight norm was folded on a copy: the model still has its parametrizations
    assert any(hasattr(m, "parametrizations") for m in model.modules())


def test_cli_onnx_export_of_imported_encodec(tmp_path, capsys):
    """An imported EnCodec (48 kHz layout: stereo, centred reflect padding, group norm)
    exports through the CLI; onnx.json records the onnxruntime check."""
    transformers = pytest.importorskip("transformers")
    from audio_core.cli import main

    config = transformers.EncodecConfig(
        sampling_rate=48000, audio_channels=2, hidden_size=8, num_filters=4,
        upsampling_ratios=[4, 2], codebook_size=16, num_lstm_layers=1,
        target_bandwidths=[24.0, 48.0], use_causal_conv=False, norm_type="time_group_norm")
    torch.manual_seed(0)
    ref = transformers.EncodecModel(config)
    with torch.no_grad():
        for layer in ref.quantizer.layers:
            layer.codebook.embed.normal_()
    ref.save_pretrained(tmp_path / "hf")
    assert main(["import", str(tmp_path / "hf"), str(tmp_path / "export")]) == 0
    assert main(["export", str(tmp_path / "export"), str(tmp_path / "onnx"),
                 "--format", "onnx"]) == 0
    info = json.loads((tmp_path / "onnx" / "onnx.json").read_text())
    assert info["channels"] == 2 and info["num_codebooks"] == 2
    assert info["max_abs_diff"]["encoder_codes_differ"] == 0
    assert info["max_abs_diff"]["decoder"] <= 1e-4
    assert "onnxruntime vs PyTorch: max abs diff" in capsys.readouterr().out


def test_streaming_onnx_carries_state(tmp_path):
    """--format onnx-streaming: step graphs with explicit state (causal convs, transposed
    conv tails, LSTM h/c); chunks of 3, 7, 1 and 29 hops fed through onnxruntime give the
    offline model's codes and audio."""
    from audio_core.cli import main

    cfg = load_config("soundstream.tiny", ["model.encoder.params.lstm_layers=1",
                                           "model.decoder.params.lstm_layers=1",
                                           f"run.output_dir={tmp_path}"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    from audio_core.engine.imports import write_export

    write_export(model, cfg, tmp_path / "export", source=tmp_path, importer="test")
    assert main(["export", str(tmp_path / "export"), str(tmp_path / "s"),
                 "--format", "onnx-streaming"]) == 0
    info = json.loads((tmp_path / "s" / "onnx_streaming.json").read_text())
    hop, batch = info["hop_length"], 2
    x = 0.1 * torch.randn(batch, 1, 40 * hop, generator=torch.Generator().manual_seed(3))
    codes, audio = run_onnx_stream(tmp_path / "s", x, hop, [(0, 3), (3, 10), (10, 11), (11, 40)])
    with torch.no_grad():
        ref_codes = model.encode_codes(x)
        ref_audio = model.decoder(model.quantizer.decode(ref_codes))
    assert torch.equal(codes, ref_codes)
    diff = (audio - ref_audio).abs().max().item()
    print(f"streaming onnx: max abs diff {diff:.2e}")
    assert diff <= 1e-4
